// The race model test of DESIGN 3.4: while s3migrate copies every source object through the
// gateway (migrator credential, --threads 32), clients PUT, overwrite and DELETE random keys of
// the same key space through two gateways sharing one state store. Every key is one randomized
// round (1,000 per run): at the end the target must equal the model — no lost client write, no
// resurrected delete, every untouched object present and byte-identical. Seeded: the seed is
// printed, and RACE_SEED=<n> replays a run.
//
// A copy's GET and PUT are milliseconds apart, so a client's operation rarely falls between them
// by chance. For a random third of the touched keys the test makes it happen: the copier reads
// the source through a loopback proxy that, for those keys, holds the source's answer until the
// client's operations on the key have completed — copy GET → client ops → copy PUT, the hard
// interleavings, at random places in a real run. The other keys meet the copy wherever it is.

import { randomBytes } from "node:crypto";
import { createServer, request as httpRequest, type Server } from "node:http";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  attachBucket,
  bytesOf,
  directClient,
  gatewayClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
} from "../helpers/gateway-harness.js";
import { listAll, runCli } from "./s3migrate-helpers.js";

const rig = inject("rig");
const USER = testCredential("race-user");
const MIGRATOR = testCredential("race-migrator", { role: "migrator" });
const KEYS = Number(process.env["RACE_KEYS"] ?? 1000);
const SEED = Number(process.env["RACE_SEED"] ?? randomBytes(4).readUInt32BE(0));

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the clients do to one key while the copier runs. */
type Scenario = "untouched" | "put" | "delete" | "delete-put" | "put-delete" | "put-put";

function pick(r: () => number): Scenario {
  const x = r();
  if (x < 0.5) return "untouched";
  if (x < 0.65) return "put";
  if (x < 0.8) return "delete";
  if (x < 0.9) return "delete-put";
  if (x < 0.95) return "put-delete";
  return "put-put";
}

/** A loopback HTTP proxy to a plain-HTTP S3 server that can hold GET answers per key. */
async function holdingProxy(
  upstream: string,
  bucket: string,
  hold: (key: string) => Promise<void> | undefined,
): Promise<{ endpoint: string; server: Server }> {
  const target = new URL(upstream);
  const prefix = `/${bucket}/`;
  const server = createServer((req, res) => {
    const up = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on("data", (c: Buffer) => chunks.push(c));
        answer.on("end", () => {
          const path = (req.url ?? "").split("?")[0] ?? "";
          const key = path.startsWith(prefix)
            ? decodeURIComponent(path.slice(prefix.length))
            : undefined;
          const held = req.method === "GET" && key !== undefined ? hold(key) : undefined;
          void Promise.resolve(held).then(() => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(chunks));
          });
        });
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address() as { port: number };
  return { endpoint: `http://127.0.0.1:${addr.port}`, server };
}

describe(`migration race model (seed ${SEED}; replay with RACE_SEED=${SEED})`, () => {
  let certs: TestCerts;
  let a: TestGateway;
  let b: TestGateway;
  let clients: S3Client[];
  let proxyServer: Server | undefined;
  let direct: { target: S3Client; source: S3Client };
  const run = randomBytes(4).toString("hex");
  const bucket = `grace-${run}`;
  const sourceBucket = `${bucket}-src`;
  const key = (i: number): string => `race/${String(i).padStart(4, "0")}`;
  const original = (i: number): string => `source ${i} `.repeat(1 + (i % 40));

  beforeAll(async () => {
    console.log(`migration race model: seed ${SEED} (replay with RACE_SEED=${SEED})`);
    certs = await makeTestCerts();
    const stateDir = await mkdtemp(join(tmpdir(), "s3gw-race-state-"));
    const common = {
      certs,
      target: { endpoint: rig.minio.endpoint, server: rig.minio },
      credentials: [USER, MIGRATOR],
      stateDir,
    };
    a = await startTestGateway(common);
    b = await startTestGateway(common);
    // Retries as an application's SDK would (a pooled keep-alive connection the gateway closes
    // while idle can reset under a request): a retried PUT or DELETE means the same.
    clients = [
      gatewayClient(a, certs, USER, { maxAttempts: 3 }),
      gatewayClient(b, certs, USER, { maxAttempts: 3 }),
    ];
    direct = { target: directClient(rig.minio), source: directClient(rig.minio2) };
    await direct.target.send(new CreateBucketCommand({ Bucket: bucket }));
    await direct.source.send(new CreateBucketCommand({ Bucket: sourceBucket }));
    const queue = Array.from({ length: KEYS }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
          await direct.source.send(
            new PutObjectCommand({ Bucket: sourceBucket, Key: key(i), Body: original(i) }),
          );
        }
      }),
    );
    await attachBucket(a, { bucket, source: rig.minio2, sourceBucket, mode: "migrate" });
  });

  afterAll(async () => {
    proxyServer?.close();
    await a?.close();
    await b?.close();
  });

  // A real copy of 1,000 objects through the gateway with clients racing it: minutes on a
  // loaded two-core machine, so the test's own bound is larger than the suite's default.
  it(
    "the target ends equal to the model: no lost write, no resurrection, nothing missing",
    {
      timeout: 300_000,
    },
    async () => {
      const r = rng(SEED);
      const scenarios = Array.from({ length: KEYS }, () => pick(r));
      // The clients' operations, in a seeded random order, each released when the copier's
      // migrate.log (keys done, in key order) reaches its threshold: most just before the copy
      // reaches the key (so they meet its GET or PUT in flight), the rest anywhere in the run.
      const threshold = Array.from({ length: KEYS }, (_, i) =>
        r() < 0.7 ? Math.max(0, i - Math.floor(r() * 48)) : Math.floor(r() * KEYS),
      );
      const order = Array.from({ length: KEYS }, (_, i) => i).sort(
        (x, y) => (threshold[x] as number) - (threshold[y] as number),
      );
      const model = new Map<number, string | undefined>();
      for (let i = 0; i < KEYS; i++) model.set(i, original(i));

      // Keys whose copy is held between its GET and its PUT while the clients act.
      const held = new Map<
        number,
        { got: () => void; gotIt: Promise<void>; done: Promise<void> }
      >();
      const release = new Map<number, () => void>();
      for (let i = 0; i < KEYS; i++) {
        if (scenarios[i] === "untouched" || r() >= 1 / 3) continue;
        let got!: () => void;
        const gotIt = new Promise<void>((resolve) => (got = resolve));
        const done = new Promise<void>((resolve) => release.set(i, resolve));
        held.set(i, { got, gotIt, done });
      }
      const proxy = await holdingProxy(rig.minio2.endpoint, sourceBucket, (k) => {
        const h = held.get(Number(k.slice("race/".length)));
        if (h === undefined) return undefined;
        h.got();
        return h.done;
      });
      proxyServer = proxy.server;
      const destFolder = await mkdtemp(join(tmpdir(), "s3gw-race-dest-"));
      const caFile = join(certs.dir, "ca.pem");
      const copier = runCli(
        [
          "--src-url",
          proxy.endpoint,
          "--src-bucket",
          sourceBucket,
          "--src-key",
          rig.minio2.accessKeyId,
          "--list-source",
          "--dest-url",
          a.url,
          "--dest-bucket",
          bucket,
          "--dest-key",
          MIGRATOR.accessKeyId,
          "--dest-ca",
          caFile,
          "--dest-folder",
          destFolder,
          "--threads",
          "32",
        ],
        {
          ...process.env,
          S3MIGRATE_SRC_SECRET: rig.minio2.secretAccessKey,
          S3MIGRATE_DEST_SECRET: MIGRATOR.secretAccessKey,
        },
      );

      let copierDone = false;
      void copier.finally(() => {
        copierDone = true;
      });
      let done = 0;
      const copied = async (): Promise<number> => {
        const text = await readFile(join(destFolder, "migrate.log"), "utf8").catch(() => "");
        done = text.split("\n").length - 1;
        return done;
      };
      /** Waits (on the copier's progress, a condition) until `t` keys are done or it ended. */
      const reached = async (t: number): Promise<void> => {
        while (done < t && !copierDone) {
          if ((await copied()) >= t) return;
          await new Promise((resolve) => setTimeout(resolve, 15));
        }
      };

      let n = 0;
      const started = Date.now();
      const perform = async (i: number, client: S3Client): Promise<void> => {
        const put = async (v: string): Promise<void> => {
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: key(i), Body: v }));
          model.set(i, v);
        };
        const del = async (): Promise<void> => {
          await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key(i) }));
          model.set(i, undefined);
        };
        const v = `client ${i} ${n++}`;
        switch (scenarios[i]) {
          case "untouched":
            break;
          case "put":
            await put(v);
            break;
          case "delete":
            await del();
            break;
          case "delete-put":
            await del();
            await put(v);
            break;
          case "put-delete":
            await put(v);
            await del();
            break;
          case "put-put":
            await put(v);
            await put(`${v} again`);
            break;
        }
      };
      // Held keys: the client acts once the copier has the source's answer, then the copy goes on.
      const pending = new Set<number>();
      const heldOps = [...held].map(async ([i, h], j) => {
        pending.add(i);
        await h.gotIt;
        try {
          await perform(i, clients[j % 2] as S3Client);
        } finally {
          // A failing client operation must not leave the copy held (the run would hang).
          release.get(i)?.();
          pending.delete(i);
        }
      });
      const watch = setInterval(() => {
        const some = [...pending].slice(0, 10).map((k) => `${k}:${scenarios[k]}`);
        console.log(`race: copied ${done}, held keys still pending: ${some.join(" ")}`);
      }, 15_000);
      const workers = Array.from({ length: 8 }, async (_, w) => {
        const client = clients[w % 2] as S3Client;
        for (let next = order.shift(); next !== undefined; next = order.shift()) {
          if (held.has(next)) continue;
          await reached(threshold[next] as number);
          await perform(next, client);
        }
      });
      await Promise.all(workers);
      await Promise.all(heldOps);
      const clientsDone = Date.now();
      clearInterval(watch);
      const result = await copier;
      console.log(
        `clients done ${((clientsDone - started) / 1000).toFixed(1)} s, copier ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      console.log(
        `migration race model: ${KEYS} keys, ${scenarios.filter((x) => x !== "untouched").length} touched by clients, ${held.size} of them between the copy's GET and PUT`,
      );
      expect(result.code, result.stderr).toBe(0);

      const onTarget = new Set(await listAll(direct.target, bucket));
      const wrong: string[] = [];
      for (let i = 0; i < KEYS; i++) {
        const want = model.get(i);
        const how = `${scenarios[i]}${held.has(i) ? ", between the copy's GET and PUT" : ""}`;
        if (want === undefined) {
          if (onTarget.has(key(i))) wrong.push(`${key(i)} (${how}): resurrected`);
          continue;
        }
        if (!onTarget.has(key(i))) {
          wrong.push(`${key(i)} (${how}): missing`);
          continue;
        }
        const got = await direct.target.send(new GetObjectCommand({ Bucket: bucket, Key: key(i) }));
        const text = (await bytesOf(got.Body)).toString();
        if (text !== want) wrong.push(`${key(i)} (${how}): has "${text.slice(0, 40)}"`);
      }
      const extra = [...onTarget].filter((k) => !k.startsWith("race/"));
      expect(extra, "nothing but the bucket's keys on the target").toEqual([]);
      expect(wrong, `seed ${SEED}`).toEqual([]);
    },
  );
});
