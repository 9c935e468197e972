// The conformance measure of issue 11: versitygw's own client-side S3 suite (`versitygw test
// <TestName>`, the rig's binary) run directly against MinIO and through s3gw in front of that
// same MinIO (buckets not attached: every request goes to the target), in one run. Prints both
// pass counts and every test whose outcome differs, with the first lines of its output.
//
//   npx tsx bench/conformance/run.ts [--filter REGEX] [--exclude REGEX] [--timeout-ms MS]
//                                    [--json FILE]
//
// Each test is its own subcommand (listed by `versitygw test --help`) and is run by name:
// `full-flow` stops at the first crash. Every server listens on loopback only. The suite uses
// fixed bucket names, so the two sides get a MinIO each (same binary, same settings) and run
// side by side, each side one test at a time. The default
// exclusion drops the suites that test versitygw's own IAM, STS, ACL-policy engine and static
// website hosting, which neither MinIO nor the gateway implements (they fail both ways), and
// the versioning group, which needs versitygw's `--versioning-enabled` flag and a versioned bucket.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { S3AttachValidator } from "../../gateway/admin/attach-validator.js";
import { parseConfig } from "../../gateway/config.js";
import { s3ListenerFactory } from "../../gateway/front/listener.js";
import { createLogger } from "../../gateway/logger.js";
import { startGateway, type RunningGateway } from "../../gateway/server.js";
import { S3Client } from "../../s3/client.js";
import { defaultBinDir, startServer, type RunningServer } from "../../test/rig/servers.js";

const DEFAULT_EXCLUDE =
  "^(IAM|S3IAM|AccessControl|PublicBucket|WebsiteHosting|PutBucketWebsite|GetBucketWebsite|DeleteBucketWebsite|Versioning_)";

const { values } = parseArgs({
  options: {
    filter: { type: "string", default: "" },
    exclude: { type: "string", default: DEFAULT_EXCLUDE },
    "timeout-ms": { type: "string", default: "120000" },
    json: { type: "string" },
    verbose: { type: "boolean", default: false },
    "gateway-log": { type: "string" },
  },
});

const VERSITYGW = join(defaultBinDir, "versitygw");

/** The outcome of one test against one endpoint. */
interface Outcome {
  readonly passed: boolean;
  readonly output: string;
  readonly ms: number;
}

/** Runs a program; resolves with its exit code and output (never rejects). */
function runProgram(
  args: readonly string[],
  timeoutMs: number,
  maxOutput = 64 * 1024,
): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    const child = spawn(VERSITYGW, args, {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const keep = (d: Buffer): void => {
      if (output.length < maxOutput) output += d.toString();
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeoutMs} ms)`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      done({ code: code ?? 1, output });
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      done({ code: 127, output: String(err) });
    });
  });
}

/**
 * Removes every bucket of a MinIO, contents included (MinIO's `x-minio-force-delete`). The suite
 * uses fixed bucket names and leaves its bucket behind when a test fails, which would make the
 * next test fail at CreateBucket; each test starts from an empty server instead. Resolves false
 * when a bucket could not be removed (objects under COMPLIANCE retention): the caller then
 * replaces the server.
 */
async function emptyServer(server: RunningServer): Promise<boolean> {
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  try {
    const res = await client.request({ method: "GET" });
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c as Buffer);
    const xml = Buffer.concat(chunks).toString("utf8");
    let clean = true;
    for (const m of xml.matchAll(/<Name>([^<]+)<\/Name>/g)) {
      const bucket = m[1] as string;
      const del = await client
        .request({
          method: "DELETE",
          bucket,
          headers: { "x-minio-force-delete": "true" },
          okStatuses: [400, 403, 404, 405, 409],
        })
        .catch(() => undefined);
      del?.body.resume();
      if (del === undefined || (del.status >= 300 && del.status !== 404)) clean = false;
    }
    return clean;
  } finally {
    await client.close();
  }
}

/** The tests the binary offers, in its order. */
async function listTests(): Promise<string[]> {
  const { output } = await runProgram(["test", "--help"], 60_000, 16 * 1024 * 1024);
  const names: string[] = [];
  for (const line of output.split("\n")) {
    const m = /^\s+(\S+)\s+Runs \S+ integration test/.exec(line);
    if (m?.[1] !== undefined) names.push(m[1]);
  }
  return names;
}

/** Whether a test's output says it passed: exit 0 and no failure line. */
function passedOf(code: number, output: string): boolean {
  return code === 0 && !/\bFAIL\b|failed|panic:/i.test(output.replace(/0 failed/g, ""));
}

async function main(): Promise<void> {
  const timeoutMs = Number(values["timeout-ms"]);
  const include = values.filter === "" ? undefined : new RegExp(values.filter);
  const exclude = values.exclude === "" ? undefined : new RegExp(values.exclude);
  const all = await listTests();
  const tests = all.filter(
    (t) =>
      (include === undefined || include.test(t)) && (exclude === undefined || !exclude.test(t)),
  );
  console.log(`versitygw suite: ${all.length} tests, ${tests.length} selected`);

  const user = { accessKey: "conformance", secretKey: randomBytes(16).toString("hex") };
  const logFile = values["gateway-log"];
  const logSink =
    logFile === undefined
      ? new Writable({ write: (_c, _e, done) => done() })
      : createWriteStream(logFile);

  /** One side of the comparison: a MinIO, and for the gateway side s3gw in front of it. */
  interface Side {
    server: RunningServer;
    gateway: RunningGateway | undefined;
    args: string[];
  }
  const startSide = async (through: boolean): Promise<Side> => {
    const server = await startServer("minio");
    if (!through) {
      return {
        server,
        gateway: undefined,
        args: ["-a", server.accessKeyId, "-s", server.secretAccessKey, "-e", server.endpoint],
      };
    }
    const work = await mkdtemp(join(tmpdir(), "s3gw-conformance-"));
    const config = parseConfig(
      [
        "listen: 127.0.0.1:0",
        "admin: { listen: 127.0.0.1:0 }",
        `region: ${server.region}`,
        `target: { endpoint: "${server.endpoint}", accessKey: ${server.accessKeyId}, secretKey: "${server.secretAccessKey}", region: ${server.region} }`,
        `credentials: [{ accessKey: ${user.accessKey}, secretKey: "${user.secretKey}" }]`,
        `state: { path: "${join(work, "state.json")}" }`,
      ].join("\n"),
      { env: {}, baseDir: work },
    );
    const gateway = await startGateway({
      config,
      logger: createLogger({ destination: logSink }),
      validator: new S3AttachValidator({ target: config.target }),
      s3Listener: s3ListenerFactory(),
    });
    return {
      server,
      gateway,
      args: ["-a", user.accessKey, "-s", user.secretKey, "-e", gateway.s3?.url ?? ""],
    };
  };
  const stopSide = async (side: Side): Promise<void> => {
    await side.gateway?.close();
    await side.server.stop();
  };
  const sides: Record<"direct" | "gateway", Side> = {
    direct: await startSide(false),
    gateway: await startSide(true),
  };
  let restarts = 0;
  console.log(
    `direct: ${sides.direct.server.endpoint}  gateway: ${sides.gateway.args[5] ?? ""} (in front of ${sides.gateway.server.endpoint})`,
  );

  const results = new Map<string, { direct?: Outcome; gateway?: Outcome }>();
  let doneCount = 0;
  const started = Date.now();
  const runOne = async (name: string, which: keyof typeof sides): Promise<Outcome> => {
    if (!(await emptyServer(sides[which].server))) {
      // A bucket under COMPLIANCE retention cannot go: a fresh server (and gateway) instead.
      await stopSide(sides[which]);
      sides[which] = await startSide(which === "gateway");
      restarts++;
    }
    const t0 = Date.now();
    const { code, output } = await runProgram(["test", ...sides[which].args, name], timeoutMs);
    const passed = passedOf(code, output);
    if (values.verbose)
      console.log(`${which} ${name}: ${passed ? "pass" : "FAIL"} (exit ${code})\n${output}`);
    return { passed, output, ms: Date.now() - t0 };
  };
  const side = async (which: keyof typeof sides): Promise<void> => {
    for (const name of tests) {
      const outcome = await runOne(name, which);
      const r = results.get(name) ?? {};
      r[which] = outcome;
      results.set(name, r);
      if (r.direct !== undefined && r.gateway !== undefined) {
        doneCount++;
        if (doneCount % 50 === 0 || doneCount === tests.length) {
          console.log(
            `  ${doneCount}/${tests.length} (${Math.round((Date.now() - started) / 1000)} s)`,
          );
        }
      }
    }
  };
  await Promise.all([side("direct"), side("gateway")]);

  let directPass = 0;
  let gatewayPass = 0;
  const differences: { name: string; direct: boolean; gateway: boolean; output: string }[] = [];
  for (const name of tests) {
    const got = results.get(name);
    if (got?.direct === undefined || got.gateway === undefined) continue;
    const r = { direct: got.direct, gateway: got.gateway };
    if (r.direct.passed) directPass++;
    if (r.gateway.passed) gatewayPass++;
    if (r.direct.passed !== r.gateway.passed) {
      const failing = r.gateway.passed ? r.direct : r.gateway;
      differences.push({
        name,
        direct: r.direct.passed,
        gateway: r.gateway.passed,
        output: failing.output
          .split("\n")
          .filter((l) => l.trim() !== "")
          .slice(0, 6)
          .join("\n    "),
      });
    }
  }
  console.log("");
  console.log(`direct MinIO: ${directPass}/${tests.length} passed`);
  console.log(`through s3gw: ${gatewayPass}/${tests.length} passed`);
  const onlyDirect = differences.filter((d) => d.direct);
  const onlyGateway = differences.filter((d) => d.gateway);
  console.log(`passes directly but not through the gateway: ${onlyDirect.length}`);
  for (const d of onlyDirect) console.log(`  ${d.name}\n    ${d.output}`);
  console.log(`passes through the gateway but not directly: ${onlyGateway.length}`);
  for (const d of onlyGateway) console.log(`  ${d.name}\n    ${d.output}`);
  if (values.json !== undefined) {
    await writeFile(
      values.json,
      JSON.stringify(
        {
          selected: tests.length,
          directPass,
          gatewayPass,
          results: Object.fromEntries(
            [...results].map(([n, r]) => [
              n,
              { direct: r.direct?.passed, gateway: r.gateway?.passed },
            ]),
          ),
          differences,
        },
        null,
        2,
      ),
    );
  }
  console.log(`servers replaced after undeletable buckets: ${restarts}`);
  await Promise.all([stopSide(sides.direct), stopSide(sides.gateway)]);
}

main().catch((err: unknown) => {
  console.error(`conformance: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
