/**
 * The gateway's pino logger: JSON lines, with every field that could carry a secret redacted
 * even if a caller passes it by mistake (DESIGN 8).
 */
import { pino, type DestinationStream, type Logger } from "pino";

/** Field paths censored in every log line. */
export const REDACTED_PATHS = [
  "secretKey",
  "*.secretKey",
  "sourceSecretKey",
  "*.sourceSecretKey",
  "secretAccessKey",
  "*.secretAccessKey",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "*.headers['x-amz-security-token']",
];

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** pino level; `info` unless given. */
  level?: string;
  /** Where lines go; stdout unless given. */
  destination?: DestinationStream;
}

/** Creates the gateway logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: "s3gw",
      level: options.level ?? "info",
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    options.destination,
  );
}
