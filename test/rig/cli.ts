// `npm run rig`: starts the same real S3 servers as the integration tests (MinIO, a second
// MinIO, versitygw with its posix backend), prints how to reach them, and stops them cleanly
// on Ctrl-C. For trying the gateway and the CLIs by hand. See docs/test-rig.md.

import { type RunningServer, startServers, stopServers } from "./servers.js";

const NAMES = ["minio", "minio2", "versitygw"] as const;

/** Prints one server's endpoint, keys, data dir and a shell snippet for the AWS CLI. */
function describe(name: string, server: RunningServer): string {
  const env = name.toUpperCase();
  return [
    `${name} (${server.kind})`,
    `  endpoint   ${server.endpoint}`,
    `  access key ${server.accessKeyId}`,
    `  secret key ${server.secretAccessKey}`,
    `  region     ${server.region}`,
    `  data dir   ${server.dataDir}`,
    `  log        ${server.logFile}`,
    `  # AWS CLI (older versions ignore AWS_ENDPOINT_URL: pass --endpoint-url "$${env}_URL")`,
    `  export ${env}_URL=${server.endpoint}`,
    `  export AWS_ACCESS_KEY_ID=${server.accessKeyId} AWS_SECRET_ACCESS_KEY=${server.secretAccessKey} AWS_DEFAULT_REGION=${server.region} AWS_ENDPOINT_URL=${server.endpoint}`,
    `  aws --endpoint-url "$${env}_URL" s3 ls`,
  ].join("\n");
}

/** Runs the rig until SIGINT or SIGTERM. */
async function main(): Promise<void> {
  // Listen first: a Ctrl-C during startup then stops the servers once they are up.
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  console.log("starting minio, minio2 and versitygw…");
  const servers = await startServers(["minio", "minio", "versitygw"]);
  servers.forEach((server, i) => console.log(`\n${describe(NAMES[i] ?? server.kind, server)}`));
  console.log("\nrunning; press Ctrl-C to stop and remove the data dirs");
  const sig = await stopRequested;
  console.log(`\n${sig}: stopping…`);
  await stopServers(servers);
  console.log("stopped");
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
