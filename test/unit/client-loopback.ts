/**
 * A loopback HTTP server that answers crafted S3 documents, and an S3Client pointed at it: for
 * unit tests of our own parsing, paging and outcome mapping, never of S3 behaviour (the
 * integration suite runs against real servers).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { S3Client } from "../../s3/client.js";

/** What the loopback server answers to one request. */
export interface LoopbackAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** A running loopback server; `answer` decides each reply, `seen` records each request URL. */
export interface Loopback {
  client: S3Client;
  answer: (req: IncomingMessage, url: URL) => LoopbackAnswer;
  seen: URL[];
  close(): Promise<void>;
}

/** Starts a loopback server on 127.0.0.1 and an S3Client (no retries, short timeouts) for it. */
export async function startLoopback(): Promise<Loopback> {
  const lb: Omit<Loopback, "client" | "close"> = { answer: () => ({ status: 500 }), seen: [] };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://loopback");
      lb.seen.push(url);
      const a = lb.answer(req, url);
      const body = Buffer.from(a.body ?? "");
      res.writeHead(a.status, { "content-length": String(body.length), ...a.headers });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
    region: "us-east-1",
    retry: { attempts: 1 },
    timeouts: { connectMs: 5_000, headersMs: 5_000, bodyIdleMs: 5_000 },
  });
  return Object.assign(lb, {
    client,
    async close(): Promise<void> {
      await client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** A ListObjectsV2 page holding `keys` (url-encoded, as the client asks). */
export function listPage(o: { keys: string[]; truncated: boolean; next?: string }): string {
  const contents = o.keys
    .map(
      (k) =>
        `<Contents><Key>${encodeURIComponent(k)}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>` +
        `<ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    )
    .join("");
  const next =
    o.next === undefined ? "" : `<NextContinuationToken>${o.next}</NextContinuationToken>`;
  return (
    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    `<Name>b</Name><Prefix></Prefix><KeyCount>${o.keys.length}</KeyCount><MaxKeys>1000</MaxKeys>` +
    `<EncodingType>url</EncodingType><IsTruncated>${o.truncated}</IsTruncated>${next}${contents}</ListBucketResult>`
  );
}
