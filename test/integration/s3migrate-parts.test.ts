// Parts of one multipart object are copied in parallel (bounded lanes), on the rig's MinIOs:
// a pass-through proxy in front of the target proves the overlap (it holds part 1 until part 2
// arrives, which a serial copy never sends), that a refused part fails the key with nothing
// left on the target (no object, no unfinished upload), and that the next run copies it with
// the source's multipart ETag and bytes. A non-multipart source copied by ranges stays correct.

import { createHash, randomBytes } from "node:crypto";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { describe, expect, inject, it } from "vitest";
import {
  baseArgs,
  listAll,
  put,
  runCli,
  secretEnv,
  tempDir,
  bucketPair,
} from "./s3migrate-helpers.js";

const rig = inject("rig");
const MiB = 1024 * 1024;

/**
 * What the proxy does with one request: forward it (maybe after a wait), forward it with its
 * first body byte flipped (same length: only the bytes lie), or answer 500.
 */
type Decision = "forward" | "corrupt" | "refuse" | Promise<void>;

/** A pass-through proxy to `upstream` that asks `decide` about each request. */
async function proxy(
  upstream: string,
  decide: (method: string, path: string) => Decision,
): Promise<{ endpoint: string; server: Server }> {
  const target = new URL(upstream);
  const server = createServer((req, res) => {
    const method = req.method ?? "";
    const path = req.url ?? "/";
    const decision = decide(method, path);
    if (decision === "refuse") {
      req.resume();
      req.on("end", () => {
        res.writeHead(500, { "content-type": "application/xml" });
        res.end("<Error><Code>InternalError</Code><Message>injected</Message></Error>");
      });
      return;
    }
    const forward = (): void => {
      const fwd = httpRequest(
        { host: target.hostname, port: target.port, method, path, headers: req.headers },
        (ures) => {
          res.writeHead(ures.statusCode ?? 502, ures.headers);
          ures.pipe(res);
        },
      );
      fwd.on("error", () => res.destroy());
      if (decision !== "corrupt") {
        req.pipe(fwd);
        return;
      }
      let first = true;
      req.on("data", (chunk: Buffer) => {
        if (first && chunk.length > 0) {
          chunk[0] = (chunk[0] ?? 0) ^ 0xff;
          first = false;
        }
        fwd.write(chunk);
      });
      req.on("end", () => fwd.end());
    };
    if (decision === "forward" || decision === "corrupt") forward();
    else decision.then(forward, () => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, server };
}

/** Uploads `data` as a multipart object with the given part sizes; returns its ETag. */
async function putMultipart(
  client: S3Client,
  bucket: string,
  key: string,
  data: Buffer,
  parts: number[],
): Promise<string> {
  const { UploadId } = await client.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: "x/parts" }),
  );
  const done = [];
  let at = 0;
  for (const [i, size] of parts.entries()) {
    const r = await client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        PartNumber: i + 1,
        Body: data.subarray(at, at + size),
      }),
    );
    done.push({ PartNumber: i + 1, ETag: r.ETag });
    at += size;
  }
  const r = await client.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: done },
    }),
  );
  return r.ETag as string;
}

async function md5Of(client: S3Client, bucket: string, key: string): Promise<string> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return createHash("md5")
    .update(
      await (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    )
    .digest("hex");
}

/** The part number of an UploadPart request path, or undefined. */
function partOf(method: string, path: string): number | undefined {
  if (method !== "PUT") return undefined;
  const q = new URLSearchParams(path.split("?")[1] ?? "");
  return q.has("uploadId") ? Number(q.get("partNumber")) : undefined;
}

describe("s3migrate multipart copies by parallel parts", () => {
  it("overlaps parts, fails a key whose part is refused without leaving anything, then copies it with its ETag", async () => {
    const { src, dst, srcBucket, destBucket } = await bucketPair(rig.minio2, rig.minio);
    // Six parts with an uneven last one, and a plain object above the threshold (by ranges).
    const multi = randomBytes(27 * MiB);
    const multiEtag = await putMultipart(src, srcBucket, "multi.bin", multi, [
      5 * MiB,
      5 * MiB,
      5 * MiB,
      5 * MiB,
      5 * MiB,
      2 * MiB,
    ]);
    const plain = randomBytes(12 * MiB + 3);
    await put(src, { Bucket: srcBucket, Key: "plain.bin", Body: plain });
    const env = secretEnv(rig.minio2, rig.minio);
    const options = ["--multipart-threshold", "5M", "--part-size", "5M", "--json"];

    // Part 1 of multi.bin is held until part 2 arrives (a serial copy would never send it and
    // time out here); part 4 is refused every time.
    let part2Seen: () => void = () => undefined;
    const part2 = new Promise<void>((resolve, reject) => {
      part2Seen = resolve;
      setTimeout(() => reject(new Error("part 2 never came while part 1 was held")), 20_000);
    });
    part2.catch(() => undefined);
    let overlapped = false;
    const multiPath = `/${destBucket}/multi.bin`;
    const refusing = await proxy(rig.minio.endpoint, (method, path) => {
      const part = path.startsWith(multiPath) ? partOf(method, path) : undefined;
      if (part === 2) part2Seen();
      if (part === 1) return part2.then(() => void (overlapped = true));
      if (part === 4) return "refuse";
      return "forward";
    });
    const destFolder = await tempDir();
    try {
      const first = await runCli(
        [
          ...baseArgs({
            src: rig.minio2,
            srcBucket,
            dest: { ...rig.minio, endpoint: refusing.endpoint },
            destBucket,
            destFolder,
          }),
          ...options,
          "--retries",
          "1",
        ],
        env,
      );
      expect(first.code, first.stderr).toBe(1);
      expect(overlapped).toBe(true);
    } finally {
      refusing.server.close();
    }
    const failed = (await readFile(join(destFolder, "failed.log"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { key: string; code: string });
    expect(failed).toEqual([expect.objectContaining({ key: "multi.bin", code: "InternalError" })]);
    expect(await listAll(dst, destBucket)).toEqual(["plain.bin"]);
    const uploads = await dst.send(new ListMultipartUploadsCommand({ Bucket: destBucket }));
    expect(uploads.Uploads ?? []).toEqual([]);
    expect(await md5Of(dst, destBucket, "plain.bin")).toBe(
      createHash("md5").update(plain).digest("hex"),
    );

    // Straight to the target: the failed key is copied, part for part, ETag and bytes equal.
    const second = await runCli(
      [
        ...baseArgs({ src: rig.minio2, srcBucket, dest: rig.minio, destBucket, destFolder }),
        ...options,
      ],
      env,
    );
    expect(second.code, second.stderr).toBe(0);
    const head = await dst.send(new HeadObjectCommand({ Bucket: destBucket, Key: "multi.bin" }));
    expect(head.ETag).toBe(multiEtag);
    expect(head.ContentType).toBe("x/parts");
    expect(await md5Of(dst, destBucket, "multi.bin")).toBe(
      createHash("md5").update(multi).digest("hex"),
    );
  });

  it("a byte flipped on its way to the target is caught before Complete, hashed or not", async () => {
    const { src, dst, srcBucket, destBucket } = await bucketPair(rig.minio2, rig.minio);
    const sizes = [5 * MiB, MiB + 7];
    for (const key of ["m1", "m2", "m3"]) {
      await putMultipart(src, srcBucket, key, randomBytes(6 * MiB + 7), sizes);
    }
    // Part 2 of m2 and m3 gets its first byte flipped in transit. m1 arrives intact, and its
    // locally hashed parts teach the copier that this target's part ETags are MD5s, so m2 and
    // m3 are not hashed here: only the composite-ETag check before Complete can catch them.
    const corrupting = await proxy(rig.minio.endpoint, (method, path) =>
      partOf(method, path) === 2 && !path.startsWith(`/${destBucket}/m1?`) ? "corrupt" : "forward",
    );
    const destFolder = await tempDir();
    try {
      const run = await runCli(
        [
          ...baseArgs({
            src: rig.minio2,
            srcBucket,
            dest: { ...rig.minio, endpoint: corrupting.endpoint },
            destBucket,
            destFolder,
          }),
          "--list-source",
          "--threads",
          "1",
          "--retries",
          "2",
        ],
        secretEnv(rig.minio2, rig.minio),
      );
      expect(run.code, run.stderr).toBe(1);
    } finally {
      corrupting.server.close();
    }
    const failed = (await readFile(join(destFolder, "failed.log"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { key: string; code: string; message: string });
    expect(failed.map((f) => [f.key, f.code])).toEqual([
      ["m2", "ETagMismatch"],
      ["m3", "ETagMismatch"],
    ]);
    expect(failed[0]?.message).toContain("the target's parts make ETag");
    // Nothing corrupt was committed, and no upload was left behind.
    expect(await listAll(dst, destBucket)).toEqual(["m1"]);
    const uploads = await dst.send(new ListMultipartUploadsCommand({ Bucket: destBucket }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });
});
