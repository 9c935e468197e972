// Helper process for test/integration/gateway-state-store.test.ts: opens the state store
// described by $STATE_CONFIG (a StateConfig as JSON) and attaches $WRITES buckets named
// `$PREFIX-NNNN` one after the other, printing `acked <bucket>` after each acknowledgement.
// The test kills it with SIGKILL mid-run (durability) or runs several at once (concurrency).

import type { StateConfig } from "../../gateway/config.js";
import { openStateStore } from "../../gateway/state/open.js";

const config = JSON.parse(process.env.STATE_CONFIG ?? "{}") as StateConfig;
const writes = Number(process.env.WRITES ?? "10");
const prefix = process.env.PREFIX ?? "w";
const store = await openStateStore(
  { ...config, gatewayId: `writer-${process.pid}` },
  { passive: true },
);
for (let i = 0; i < writes; i++) {
  const bucket = `${prefix}-${String(i).padStart(4, "0")}`;
  await store.attach(
    {
      bucket,
      sourceUrl: "http://127.0.0.1:7070",
      sourceBucket: bucket,
      sourceAccessKey: "k",
      sourceSecretKey: "s",
      sourceRegion: "us-east-1",
      sourceCa: "system",
    },
    { by: "writer" },
  );
  process.stdout.write(`acked ${bucket}\n`);
}
await store.close();
