/**
 * Certificate rotation without a restart (DESIGN 1, phase 3 adds the source bucket's hostname to
 * the gateway certificate's SANs; certificates also expire).
 *
 * On SIGHUP, and when the certificate or key file changes, the pair is read again, checked
 * (`tls.createSecureContext` refuses a key that does not match the certificate, an unreadable
 * file or bad PEM) and given to the server with `server.setSecureContext`: new TLS connections
 * get the new pair, connections already open keep theirs and are never dropped. A bad pair is
 * refused with one log line and the old pair stays in service.
 *
 * Files are watched by polling their metadata (`fs.watchFile`): it survives the ways operators
 * and tools replace certificates (rename over the file, a Kubernetes secret's symlink swap),
 * where `fs.watch` loses track of a replaced inode.
 */
import { readFile, watchFile, unwatchFile, type Stats } from "node:fs";
import { createSecureContext } from "node:tls";
import type { Server as HttpsServer } from "node:https";
import type { Logger } from "pino";

/** Options of {@link watchCertificates}. */
export interface TlsReloadOptions {
  readonly server: HttpsServer;
  readonly certPath: string;
  readonly keyPath: string;
  readonly logger: Logger;
  /** How often the files' metadata is polled, in ms (default 5 s; 0 turns watching off). */
  readonly pollIntervalMs?: number;
  /** Reload on SIGHUP too (default true). */
  readonly onSignal?: boolean;
}

/** A running watcher. */
export interface TlsReloader {
  /** Reads and installs the pair now; resolves true when it was taken, false when refused. */
  reload(reason: string): Promise<boolean>;
  /** Stops watching the files and listening for SIGHUP. */
  stop(): void;
}

/** The default polling interval of the certificate files. */
export const DEFAULT_TLS_POLL_INTERVAL_MS = 5_000;

function read(path: string): Promise<Buffer> {
  return new Promise((resolveRead, reject) =>
    readFile(path, (err, data) => (err ? reject(err) : resolveRead(data))),
  );
}

/** Starts reloading the server's certificate on SIGHUP and when its files change. */
export function watchCertificates(options: TlsReloadOptions): TlsReloader {
  const { server, certPath, keyPath, logger } = options;
  const interval = options.pollIntervalMs ?? DEFAULT_TLS_POLL_INTERVAL_MS;
  let running: Promise<boolean> | undefined;
  let again = false;

  const loadOnce = async (reason: string): Promise<boolean> => {
    let cert: Buffer;
    let key: Buffer;
    try {
      [cert, key] = await Promise.all([read(certPath), read(keyPath)]);
      // Throws on bad PEM and on a key that does not belong to the certificate.
      createSecureContext({ cert, key });
    } catch (err) {
      // The message names the problem (no such file, key values mismatch); never the key.
      const message = err instanceof Error ? err.message : String(err);
      logger.warn(
        { reason, certPath, keyPath, problem: message },
        "TLS certificate not reloaded: the new certificate and key were refused; the old pair stays in service",
      );
      return false;
    }
    server.setSecureContext({ cert, key });
    logger.info({ reason, certPath }, "TLS certificate reloaded for new connections");
    return true;
  };

  const reload = (reason: string): Promise<boolean> => {
    // One reload at a time; a change noticed during a reload triggers one more after it.
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = loadOnce(reason).finally(() => {
      running = undefined;
      if (again) {
        again = false;
        void reload(reason);
      }
    });
    return running;
  };

  const onChange = (curr: Stats, prev: Stats): void => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
    void reload("file changed");
  };
  if (interval > 0) {
    for (const p of new Set([certPath, keyPath])) {
      watchFile(p, { interval, persistent: false }, onChange);
    }
  }
  const onHup = (): void => {
    void reload("SIGHUP");
  };
  if (options.onSignal ?? true) process.on("SIGHUP", onHup);

  return {
    reload,
    stop: () => {
      if (interval > 0) {
        for (const p of new Set([certPath, keyPath])) unwatchFile(p, onChange);
      }
      process.off("SIGHUP", onHup);
    },
  };
}
