// `npm run demo`: the main job on local servers, end to end, with the real commands an operator
// types (docs/runbook.md). It starts a source (Versity Gateway, posix backend: a POSIX view) and
// a target (MinIO) on loopback, fills a source bucket, puts s3gw in front of the target over TLS,
// attaches the bucket and forwards it, lists the source's POSIX view with s3find, switches the
// bucket to migrate mode, copies every object with s3migrate while an application reads a
// not-yet-copied object, writes a new one, deletes one and lists the bucket through the gateway
// (each checked on both backends), verifies, and stops everything. Each command is printed
// before it runs.
//
// s3migrate writes through the gateway with the `migrator` credential, as the runbook says
// (docs/s3migrate.md, "Through the gateway or direct"): its reads see the target only, its
// writes are create-only and refused for a key a client deleted (a tombstone), so the
// guarantees of DESIGN 3.4 hold. In migrate mode a listing through the gateway is one merged
// view of both backends (docs/listing.md); the demo checks it against direct listings of each.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { readBounded, S3Client } from "../s3/client.js";
import { createBucket, headObject, listObjectsV2, putObject } from "../s3/client-operations.js";
import { S3ClientError } from "../s3/client-errors.js";
import { freePort, repoRoot, startServer, type RunningServer } from "../test/rig/servers.js";

const run = promisify(execFile);
const BUCKET = "demo-photos";
const OBJECTS = Number(process.env.DEMO_OBJECTS ?? 2000);

/** Runs one of our built CLIs, printing the command line (secrets travel in the environment). */
async function cli(
  name: "s3gw" | "s3migrate" | "s3find",
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<string> {
  console.log(
    `\n$ ${name} ${args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(" ")}`,
  );
  const { stdout, stderr } = await run(
    process.execPath,
    [join(repoRoot, "dist/cli", `${name}.js`), ...args],
    { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
  ).catch((err: { stdout?: string; stderr?: string; code?: number }) => {
    process.stdout.write(err.stdout ?? "");
    process.stderr.write(err.stderr ?? "");
    throw new Error(`${name} exited with ${err.code ?? "an error"}`);
  });
  process.stdout.write(stdout);
  process.stderr.write(stderr);
  return stdout;
}

/** Waits until `s3gw serve` logs that its S3 endpoint listens, or fails with its output. */
function startGateway(config: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  console.log(`\n$ s3gw serve --config ${config} &`);
  const child = spawn(
    process.execPath,
    [join(repoRoot, "dist/cli/s3gw.js"), "serve", "--config", config],
    {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  return new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(
      () => reject(new Error(`s3gw did not start in 30 s:\n${log}`)),
      30_000,
    );
    const onData = (d: Buffer): void => {
      if (process.env.DEMO_DEBUG) process.stderr.write(d);
      log += d.toString("utf8");
      if (log.includes("S3 endpoint listening")) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`s3gw exited with ${code}:\n${log}`));
    });
  });
}

/** Whether `key` is in `bucket` on one backend (HEAD; a 404 is "no", anything else throws). */
async function present(client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await headObject(client, { bucket, key });
    return true;
  } catch (err) {
    if (err instanceof S3ClientError && err.status === 404) return false;
    throw err;
  }
}

/** Waits (polling, at most `ms`) until `probe` is true. */
async function until(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every key under `prefix` in the demo bucket, paged with ListObjectsV2 as a client does. */
async function keys(client: S3Client, prefix: string): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const page of listObjectsV2(client, { bucket: BUCKET, prefix, maxKeys: 500 }))
    for (const entry of page.contents) out.add(entry.key);
  return out;
}

/** Fails the demo unless `ok`. */
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`   ok: ${what}`);
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "s3-migration-demo-"));
  const servers: RunningServer[] = [];
  let gateway: ChildProcess | undefined;
  try {
    console.log(
      "1. Two S3 clusters on loopback: the source (versitygw, posix) and the target (MinIO)",
    );
    const source = await startServer("versitygw");
    servers.push(source);
    const target = await startServer("minio");
    servers.push(target);
    console.log(`   source ${source.endpoint}  (POSIX view: ${source.dataDir}/${BUCKET})`);
    console.log(`   target ${target.endpoint}`);

    const src = new S3Client({
      endpoint: source.endpoint,
      region: source.region,
      credentials: { accessKeyId: source.accessKeyId, secretAccessKey: source.secretAccessKey },
    });
    const dst = new S3Client({
      endpoint: target.endpoint,
      region: target.region,
      credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    });
    await createBucket(src, { bucket: BUCKET });
    await createBucket(dst, { bucket: BUCKET }); // Prepare: the empty target bucket, same name.
    // The last key in the lists' order: s3migrate reaches it last, so the application can read
    // it through the gateway before it is copied.
    const LATE_KEY = "albums/zz/late.jpg";
    const lateBytes = randomBytes(4096);
    await putObject(src, {
      bucket: BUCKET,
      key: LATE_KEY,
      body: lateBytes,
      metadata: { contentType: "image/jpeg", userMetadata: { camera: "demo" } },
    });
    for (let i = 0; i < OBJECTS; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, OBJECTS - i) }, (_, j) =>
          putObject(src, {
            bucket: BUCKET,
            key: `albums/${String((i + j) % 40).padStart(2, "0")}/photo-${i + j}.jpg`,
            body: randomBytes(1024 + ((i + j) % 7) * 512),
            metadata: { contentType: "image/jpeg", userMetadata: { camera: "demo" } },
          }),
        ),
      );
    }
    console.log(`   ${OBJECTS + 1} objects in s3://${BUCKET} on the source`);

    console.log("\n2. Prepare: TLS for the gateway, its config, and start it");
    const certs = join(work, "certs");
    const caFile = join(certs, "ca.pem");
    await run("bash", [
      join(repoRoot, "certs/make-local-certs.sh"),
      "--out",
      certs,
      "s3.localhost",
    ]);
    const [s3Port, adminPort] = [await freePort(), await freePort()];
    const config = join(work, "gateway.yaml");
    await writeFile(
      config,
      [
        `listen: 127.0.0.1:${s3Port}`,
        `tls: { cert: ${certs}/server.pem, key: ${certs}/server-key.pem }`,
        `domains: [s3.localhost]`,
        `target: { endpoint: "${target.endpoint}", accessKey: "\${TARGET_KEY}", secretKey: "\${TARGET_SECRET}" }`,
        `credentials:`,
        `  - { accessKey: app, secretKey: "\${APP_SECRET}" }`,
        `  - { accessKey: migrator, secretKey: "\${MIGRATOR_SECRET}", role: migrator }`,
        `  - { accessKey: ops, secretKey: "\${ADMIN_SECRET}", role: admin }`,
        `admin: { listen: 127.0.0.1:${adminPort} }`,
        `state: { path: ${work}/state/migrations.json }`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const secrets = {
      TARGET_KEY: target.accessKeyId,
      TARGET_SECRET: target.secretAccessKey,
      APP_SECRET: randomBytes(12).toString("hex"),
      MIGRATOR_SECRET: randomBytes(12).toString("hex"),
      ADMIN_SECRET: randomBytes(12).toString("hex"),
    };
    gateway = await startGateway(config, secrets);
    const admin = {
      S3GW_ADMIN_URL: `http://127.0.0.1:${adminPort}`,
      S3GW_ACCESS_KEY: "ops",
      S3GW_SECRET_KEY: secrets.ADMIN_SECRET,
      S3GW_SOURCE_ACCESS_KEY: source.accessKeyId,
      S3GW_SOURCE_SECRET_KEY: source.secretAccessKey,
    };

    console.log("\n3. Forward: attach the bucket to its source and forward every request to it");
    await cli("s3gw", ["bucket", "migrate", "attach", BUCKET, source.endpoint, "system"], admin);
    await cli(
      "s3gw",
      ["bucket", "migrate", "update", "--bucket", BUCKET, "--mode", "forward"],
      admin,
    );
    const viaGateway = new S3Client({
      endpoint: `https://127.0.0.1:${s3Port}`,
      region: "us-east-1",
      ca: await readFile(caFile),
      credentials: { accessKeyId: "app", secretAccessKey: secrets.APP_SECRET },
    });
    let seen = 0;
    for await (const page of listObjectsV2(viaGateway, { bucket: BUCKET }))
      seen += page.contents.length;
    console.log(
      `   an application listing through the gateway sees ${seen} objects (served by the source)`,
    );

    console.log(
      "\n4. Migrate: list the source's POSIX view, dry-run, switch, then copy everything",
    );
    const lists = join(work, "src-lists");
    const dest = join(work, "dest-folder");
    await cli("s3find", [
      join(source.dataDir, BUCKET),
      lists,
      "--skip-dir",
      ".sgwtmp", // versitygw's in-flight uploads: not objects
      "--progress-interval",
      "0",
    ]);
    const copyArgs = [
      "--src-url",
      source.endpoint,
      "--src-bucket",
      BUCKET,
      "--src-key",
      source.accessKeyId,
      "--src-folder",
      lists,
      // Through the gateway, as the migrator (docs/runbook.md, step 3).
      "--dest-url",
      `https://127.0.0.1:${s3Port}`,
      "--dest-ca",
      caFile,
      "--dest-bucket",
      BUCKET,
      "--dest-key",
      "migrator",
      "--dest-folder",
      dest,
      "--threads",
      "32",
      "--progress-interval",
      "2",
    ];
    const copyEnv = {
      S3MIGRATE_SRC_SECRET: source.secretAccessKey,
      S3MIGRATE_DEST_SECRET: secrets.MIGRATOR_SECRET,
    };
    await cli("s3migrate", [...copyArgs, "--dry-run", "--first", "100"], copyEnv);
    // The point of no return: the target becomes the system of record, the source the fallback
    // for what is not copied yet. From here on, a listing through the gateway merges both.
    await cli(
      "s3gw",
      ["bucket", "migrate", "update", "--bucket", BUCKET, "--mode", "migrate", "--yes"],
      admin,
    );
    // A bandwidth cap keeps the copy running long enough for the application's requests below
    // to happen while it runs (a demo only: operators cap bandwidth to spare the source).
    const copying = cli("s3migrate", [...copyArgs, "--max-bps", "1M"], copyEnv);
    try {
      console.log(
        "\n   While s3migrate runs, the application uses the bucket through the gateway:",
      );
      check(!(await present(dst, BUCKET, LATE_KEY)), `${LATE_KEY} is not on the target yet`);
      const read = await viaGateway.request({ method: "GET", bucket: BUCKET, key: LATE_KEY });
      const readBytes = await readBounded(read.body, 1024 * 1024);
      check(readBytes.equals(lateBytes), `GET ${LATE_KEY} through the gateway: the source's bytes`);
      console.log(`   (served from: ${read.headers["x-s3gw-served-from"] ?? "target"})`);

      const NEW_KEY = "albums/new/from-the-app.jpg";
      await putObject(viaGateway, { bucket: BUCKET, key: NEW_KEY, body: randomBytes(2048) });
      check(await present(dst, BUCKET, NEW_KEY), `PUT ${NEW_KEY}: on the target`);
      check(!(await present(src, BUCKET, NEW_KEY)), `PUT ${NEW_KEY}: not on the source`);

      // Deleting a key that s3migrate has already copied: the gateway records a tombstone first,
      // so no copy of it still in flight can bring it back (checked again after the copy).
      const GONE_KEY = "albums/00/photo-0.jpg";
      await until(() => present(dst, BUCKET, GONE_KEY), 60_000, `${GONE_KEY} on the target`);
      (await viaGateway.request({ method: "DELETE", bucket: BUCKET, key: GONE_KEY })).body.resume();
      check(!(await present(dst, BUCKET, GONE_KEY)), `DELETE ${GONE_KEY}: gone from the target`);
      check(!(await present(src, BUCKET, GONE_KEY)), `DELETE ${GONE_KEY}: gone from the source`);

      // One listing through the gateway covers both backends: keys copied already, keys only on
      // the source (not copied yet) and keys only on the target (the application's write).
      const onTarget = await keys(dst, "albums/");
      const onSource = await keys(src, "albums/");
      const merged = await keys(viaGateway, "albums/");
      const union = new Set([...onTarget, ...onSource]);
      const sourceOnly = [...onSource].filter((k) => !onTarget.has(k)).length;
      console.log(
        `   listing albums/ through the gateway: ${merged.size} keys (${onTarget.size} on the ` +
          `target, ${onSource.size} on the source, ${sourceOnly} of them not copied yet)`,
      );
      check(
        merged.size === union.size && [...union].every((k) => merged.has(k)),
        "the gateway's listing is the union of both backends, each key once",
      );
      check(
        merged.has(NEW_KEY) && !merged.has(GONE_KEY),
        `the listing has ${NEW_KEY} (target only) and not ${GONE_KEY} (deleted)`,
      );
    } finally {
      await copying;
    }
    check(await present(dst, BUCKET, LATE_KEY), `${LATE_KEY} copied to the target by s3migrate`);
    check(
      !(await present(dst, BUCKET, "albums/00/photo-0.jpg")),
      "the deleted key is still gone from the target after the copy",
    );
    const listedAfter = await keys(viaGateway, "albums/");
    check(
      listedAfter.size === OBJECTS + 1,
      `listing albums/ through the gateway after the copy: ${listedAfter.size} keys ` +
        `(the source's ${OBJECTS + 1}, + 1 written, - 1 deleted)`,
    );
    await viaGateway.close();

    console.log(
      "\n5. Verify: every source key is on the target with the same size, ETag and metadata",
    );
    await cli("s3migrate", [...copyArgs, "--verify"], copyEnv);
    await cli("s3gw", ["bucket", "migrate", "show", BUCKET], admin);
    await src.close();
    await dst.close();
    console.log("\ndemo complete: every object of the source bucket is on the target");
  } finally {
    gateway?.kill("SIGTERM");
    for (const s of servers.reverse()) await s.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
