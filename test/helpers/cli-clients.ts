// The Debian S3 command-line clients (AWS CLI v1, rclone, s3cmd) configured for a test gateway:
// their configuration files in a temp dir (HOME and TMPDIR too, never the user's home), the
// environment each needs to trust the CA made for the run, and a runner that starts a program
// with a clean environment (no AWS_* or RCLONE_* from the caller), a timeout and an error that
// shows what the program said. A missing tool fails the test (exit code 127): CI installs them
// (`apt-get install -y awscli s3cmd rclone`).

import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestCerts, TestCredential, TestGateway } from "./gateway-harness.js";

/** The environment of a tool run, on top of PATH and LANG. */
export type ToolEnv = Readonly<Record<string, string>>;

/** Options of one tool run. */
export interface RunOptions {
  /** Kill the program after this long (default 240 s). */
  readonly timeoutMs?: number;
  /** How stdout and stderr are decoded: `latin1` keeps binary output byte for byte. */
  readonly encoding?: "utf8" | "latin1";
}

/** The outcome of one tool run. */
export interface ToolResult {
  /** The exit code; 127 when the program is missing, 1 when it was killed. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const DEFAULT_TIMEOUT_MS = 240_000;
const MAX_BUFFER = 64 * 1024 * 1024;
/** How much of stdout an error message quotes (a listing can be thousands of lines). */
const STDOUT_IN_ERROR = 4_000;

/** Runs a program with a clean environment and returns its exit code and output, never throwing. */
export function runTool(
  file: string,
  args: readonly string[],
  env: ToolEnv,
  options: RunOptions = {},
): Promise<ToolResult> {
  return new Promise((done) => {
    execFile(
      file,
      args,
      {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", ...env },
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        maxBuffer: MAX_BUFFER,
        encoding: options.encoding ?? "utf8",
      },
      (err, stdout, stderr) => {
        if (err === null) {
          done({ code: 0, stdout, stderr });
          return;
        }
        const code = typeof err.code === "number" ? err.code : err.code === "ENOENT" ? 127 : 1;
        // A missing program or a kill (timeout, maxBuffer) says why only in the error itself.
        const why = typeof err.code === "number" ? "" : `${String(err)}\n`;
        done({ code, stdout, stderr: why + stderr });
      },
    );
  });
}

/** Runs a program and returns its stdout; throws with its stderr (and stdout) unless it exits 0. */
export async function run(
  file: string,
  args: readonly string[],
  env: ToolEnv,
  options: RunOptions = {},
): Promise<string> {
  const r = await runTool(file, args, env, options);
  if (r.code !== 0) {
    const out =
      r.stdout.length > STDOUT_IN_ERROR ? `…${r.stdout.slice(-STDOUT_IN_ERROR)}` : r.stdout;
    throw new Error(`${file} ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${out}`);
  }
  return r.stdout;
}

/** Where an s3cmd configuration sends requests (`host_base`, `host_bucket`, proxy lines). */
export interface S3cmdAddressing {
  readonly hostBase: string;
  readonly hostBucket: string;
  /** More `name = value` lines, e.g. `proxy_host` and `proxy_port`. */
  readonly extra?: readonly string[];
}

/** The three CLIs configured for one gateway and one credential. */
export interface CliClients {
  /** The temp dir holding the configuration files; HOME and TMPDIR of every tool. */
  readonly dir: string;
  /** The test CA (PEM file) every tool trusts. */
  readonly caPath: string;
  /** HOME and TMPDIR: the environment of tools that need nothing more (s3cmd, curl). */
  readonly env: ToolEnv;
  /** The AWS CLI's environment: config and credentials files, CA bundle, no IMDS. */
  readonly awsEnv: ToolEnv;
  /** rclone's `gw` remote (path style) is defined in this file. */
  readonly rcloneConf: string;
  /** rclone's environment: SSL_CERT_FILE is the test CA. */
  readonly rcloneEnv: ToolEnv;
  /** The arguments every rclone run starts with: the config, one try (failures show at once). */
  readonly rcloneArgs: readonly string[];
  /** An s3cmd configuration addressing the gateway path style (`127.0.0.1:<port>`). */
  readonly s3cmdConf: string;
  /** Writes another s3cmd configuration (same credential and TLS settings) and returns its path. */
  s3cmdConfig(name: string, addressing: S3cmdAddressing): Promise<string>;
  /** `aws --endpoint-url <gateway> ...args`; its stdout. */
  aws(...args: string[]): Promise<string>;
  /** `rclone <rcloneArgs> ...args`; its stdout. */
  rclone(...args: string[]): Promise<string>;
  /** `s3cmd -c <s3cmdConf> --no-progress ...args`; its stdout. */
  s3cmd(...args: string[]): Promise<string>;
}

/**
 * Writes the AWS CLI, rclone and s3cmd configurations for `credential` on `gw` into a new temp
 * dir (`dirPrefix` names it). Every tool addresses the gateway path style over TLS and checks its
 * certificate against the test CA. `encoding` is how the bound runners decode output.
 */
export async function writeCliClients(options: {
  readonly gw: TestGateway;
  readonly certs: TestCerts;
  readonly credential: TestCredential;
  readonly region: string;
  readonly dirPrefix?: string;
  readonly encoding?: RunOptions["encoding"];
  /** More lines of the AWS CLI's `s3 =` section, e.g. `max_concurrent_requests = 20`. */
  readonly awsS3?: readonly string[];
}): Promise<CliClients> {
  const { gw, credential: cred, region } = options;
  const dir = await mkdtemp(join(tmpdir(), options.dirPrefix ?? "s3gw-cli-"));
  const caPath = join(options.certs.dir, "ca.pem");
  const env: ToolEnv = { HOME: dir, TMPDIR: dir };
  const runOptions: RunOptions = { encoding: options.encoding ?? "utf8" };

  const awsConfig = join(dir, "aws-config");
  const awsCredentials = join(dir, "aws-credentials");
  await writeFile(
    awsConfig,
    [
      "[default]",
      `region = ${region}`,
      "s3 =",
      "    addressing_style = path",
      "    signature_version = s3v4",
      ...(options.awsS3 ?? []).map((l) => `    ${l}`),
      "",
    ].join("\n"),
  );
  await writeFile(
    awsCredentials,
    `[default]\naws_access_key_id = ${cred.accessKeyId}\naws_secret_access_key = ${cred.secretAccessKey}\n`,
    { mode: 0o600 },
  );
  const awsEnv: ToolEnv = {
    ...env,
    AWS_CONFIG_FILE: awsConfig,
    AWS_SHARED_CREDENTIALS_FILE: awsCredentials,
    AWS_CA_BUNDLE: caPath,
    AWS_EC2_METADATA_DISABLED: "true",
  };

  const rcloneConf = join(dir, "rclone.conf");
  await writeFile(
    rcloneConf,
    [
      "[gw]",
      "type = s3",
      "provider = Other",
      `access_key_id = ${cred.accessKeyId}`,
      `secret_access_key = ${cred.secretAccessKey}`,
      `endpoint = ${gw.url}`,
      `region = ${region}`,
      "force_path_style = true",
      "no_check_bucket = true",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const rcloneEnv: ToolEnv = { ...env, SSL_CERT_FILE: caPath };
  const rcloneArgs = [
    "--config",
    rcloneConf,
    "--retries",
    "1",
    "--low-level-retries",
    "1",
  ] as const;

  const s3cmdConfig = async (name: string, addressing: S3cmdAddressing): Promise<string> => {
    const path = join(dir, name);
    await writeFile(
      path,
      [
        "[default]",
        `access_key = ${cred.accessKeyId}`,
        `secret_key = ${cred.secretAccessKey}`,
        `bucket_location = ${region}`,
        "use_https = True",
        "check_ssl_certificate = True",
        "check_ssl_hostname = True",
        `ca_certs_file = ${caPath}`,
        "signature_v2 = False",
        "progress_meter = False",
        "guess_mime_type = False",
        `host_base = ${addressing.hostBase}`,
        `host_bucket = ${addressing.hostBucket}`,
        ...(addressing.extra ?? []),
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    return path;
  };
  const s3cmdConf = await s3cmdConfig("s3cmd.cfg", {
    hostBase: `127.0.0.1:${gw.port}`,
    hostBucket: `127.0.0.1:${gw.port}`,
  });

  return {
    dir,
    caPath,
    env,
    awsEnv,
    rcloneConf,
    rcloneEnv,
    rcloneArgs,
    s3cmdConf,
    s3cmdConfig,
    aws: (...args) => run("aws", ["--endpoint-url", gw.url, ...args], awsEnv, runOptions),
    rclone: (...args) => run("rclone", [...rcloneArgs, ...args], rcloneEnv, runOptions),
    s3cmd: (...args) => run("s3cmd", ["-c", s3cmdConf, "--no-progress", ...args], env, runOptions),
  };
}
