/** One S3 server started by the rig, on loopback, with its own temp dir and credentials. */
export interface RigServer {
  /** Which server this is. */
  readonly kind: "minio" | "versitygw";
  /** Base URL, `http://127.0.0.1:<port>` (path-style addressing). */
  readonly endpoint: string;
  /** Root access key generated for this run. */
  readonly accessKeyId: string;
  /** Root secret generated for this run. */
  readonly secretAccessKey: string;
  /** Region the server signs for. */
  readonly region: string;
  /**
   * The server's data directory. For versitygw (posix backend) each bucket is
   * `<dataDir>/<bucket>` and each object a plain file under it: the POSIX view s3find walks.
   */
  readonly dataDir: string;
}

/** The servers the integration tests share, provided by the global setup as `rig`. */
export interface RigContext {
  /** The usual target. */
  readonly minio: RigServer;
  /** A second MinIO, the source in MinIO → MinIO tests. */
  readonly minio2: RigServer;
  /** Versity Gateway with the posix backend, the source with a POSIX view. */
  readonly versitygw: RigServer;
}

declare module "vitest" {
  export interface ProvidedContext {
    rig: RigContext;
  }
}
