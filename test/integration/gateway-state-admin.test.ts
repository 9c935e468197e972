// What the admin gets when a live gateway does not apply a change in time (issue 12): the
// change is saved and in force here, the answer is 504 GatewaysNotConfirmed naming the
// laggard and its version, and once the laggard is gone the same update is acknowledged.
// One gateway in process on a SQLite store; the laggard is a heartbeat written straight into
// the same store by a second connection that never applies anything.

import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AdminClient, AdminClientError } from "../../gateway/admin/client.js";
import { S3AttachValidator } from "../../gateway/admin/attach-validator.js";
import { parseConfig } from "../../gateway/config.js";
import { createLogger } from "../../gateway/logger.js";
import { startGateway, type RunningGateway } from "../../gateway/server.js";
import type { StateEngine } from "../../gateway/state/engine.js";
import { openEngine } from "../../gateway/state/open.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const ADMIN = {
  accessKeyId: "st-admin",
  secretAccessKey: `admin-${randomBytes(8).toString("hex")}`,
};

function s3(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

describe("admin changes wait for every live gateway", () => {
  let gw: RunningGateway;
  let admin: AdminClient;
  let ghost: StateEngine;
  let logs = "";
  const bucket = `gw-ack-${randomBytes(5).toString("hex")}`;

  beforeAll(async () => {
    await s3(rig.minio).send(new CreateBucketCommand({ Bucket: bucket }));
    await s3(rig.versitygw).send(new CreateBucketCommand({ Bucket: bucket }));
    const dir = await mkdtemp(join(tmpdir(), "s3gw-state-admin-"));
    const config = parseConfig(
      [
        "listen: 127.0.0.1:0",
        "admin: { listen: 127.0.0.1:0 }",
        `region: ${rig.minio.region}`,
        `target: { endpoint: "${rig.minio.endpoint}", accessKey: ${rig.minio.accessKeyId}, secretKey: "${rig.minio.secretAccessKey}" }`,
        `credentials: [{ accessKey: ${ADMIN.accessKeyId}, secretKey: "${ADMIN.secretAccessKey}", role: admin }]`,
        "state: { path: state.db, gatewayId: gw-here, leaseSeconds: 4, pollSeconds: 0.2, confirmSeconds: 0.5 }",
      ].join("\n"),
      { env: {}, baseDir: dir },
    );
    gw = await startGateway({
      config,
      logger: createLogger({
        destination: new Writable({
          write(chunk: Buffer, _enc, done) {
            logs += chunk.toString();
            done();
          },
        }),
      }),
      validator: new S3AttachValidator({ target: config.target }),
    });
    admin = new AdminClient({
      endpoint: gw.admin.url,
      credentials: ADMIN,
      region: rig.minio.region,
    });
    ghost = await openEngine(config.state);
  });

  afterAll(async () => {
    await admin?.close();
    await ghost?.close();
    await gw?.close();
  });

  it("504 GatewaysNotConfirmed names the laggard; the change is saved; then it is acknowledged", async () => {
    await admin.attach(bucket, {
      sourceUrl: rig.versitygw.endpoint,
      sourceAccessKey: rig.versitygw.accessKeyId,
      sourceSecretKey: rig.versitygw.secretAccessKey,
      sourceRegion: rig.versitygw.region,
      sourceCa: "system",
    });
    // A live gateway that stays at version 1.
    await ghost.heartbeat({ gatewayId: "gw-laggard", appliedVersion: 1, leaseMs: 60_000 });
    const listed = await admin.listWithStatus();
    expect(listed.gateways.map((g) => `${g.id}@${g.appliedVersion}`)).toEqual([
      "gw-here@1",
      "gw-laggard@1",
    ]);

    const err = await admin.update({ bucket, mode: "forward" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AdminClientError);
    expect((err as AdminClientError).status).toBe(504);
    expect((err as AdminClientError).code).toBe("GatewaysNotConfirmed");
    expect((err as AdminClientError).message).toContain("gw-laggard (at version 1)");
    expect((err as AdminClientError).message).toContain("is saved (state version 2)");
    // Saved and in force here.
    expect(gw.store.get(bucket)?.mode).toBe("forward");
    expect((await admin.show(bucket)).mode).toBe("forward");

    // The laggard leaves; the same update is now a no-op that is acknowledged.
    await ghost.leave("gw-laggard");
    const again = await admin.update({ bucket, mode: "forward" });
    expect(again.map((s) => s.mode)).toEqual(["forward"]);
    expect(logs).toContain("change not confirmed by every gateway");
    expect(logs).not.toContain(rig.versitygw.secretAccessKey);
  });
});
