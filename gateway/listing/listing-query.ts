/**
 * Parses and normalises the query of a listing request exactly as S3 defines its parameters
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html, API_ListObjects.html,
 * API_ListMultipartUploads.html, API_ListObjectVersions.html). Bad values are the S3 errors
 * a client expects (InvalidArgument); nothing here talks to a backend.
 */
import { S3Error } from "../../s3/errors.js";
import { InvalidPercentEncodingError, percentDecode } from "../../s3/uri-encode.js";
import type { ListingOperation } from "./listing-types.js";

/** S3's largest page: a larger `max-keys` is answered with 1,000 entries. */
export const MAX_PAGE_ENTRIES = 1000;

/** A listing request, parsed: what the client asked, before positions are resolved. */
export interface ListingQuery {
  readonly operation: ListingOperation;
  /** `""` when absent. */
  readonly prefix: string;
  /** Absent when not given or empty (S3 treats an empty delimiter as none). */
  readonly delimiter?: string;
  /** 0..1000 (larger values are capped, as S3 does). */
  readonly maxKeys: number;
  /** `encoding-type=url`: keys, prefixes, markers and the delimiter go out url-encoded. */
  readonly encodeUrl: boolean;
  /** ListObjectsV2 `fetch-owner`; always true for the other operations (they list owners). */
  readonly fetchOwner: boolean;
  /** ListObjectsV2 `start-after`, ListObjects `marker`, or `key-marker`; undefined when absent. */
  readonly marker?: string;
  /** `upload-id-marker` / `version-id-marker` (only meaningful with a key marker). */
  readonly idMarker?: string;
  /** ListObjectsV2 `continuation-token`, still sealed. */
  readonly continuationToken?: string;
}

const INTEGER = /^[0-9]+$/;
const INT32_MAX = 2 ** 31 - 1;

function invalidArgument(message: string, name: string, value: string): S3Error {
  return new S3Error("InvalidArgument", {
    message,
    extra: { ArgumentName: name, ArgumentValue: value },
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a raw query into a map (first value of a repeated name wins). `%XX` escapes are UTF-8
 * bytes; a `+` is a literal plus, as for every other parameter the gateway reads (SDKs send a
 * space as `%20`). Undecodable input is InvalidArgument.
 */
export function decodeListingQuery(rawQuery: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    let name: string;
    let value: string;
    try {
      name = utf8.decode(percentDecode(rawName));
      value = utf8.decode(percentDecode(rawValue));
    } catch (err) {
      if (err instanceof InvalidPercentEncodingError || err instanceof TypeError) {
        throw invalidArgument("The query string is not valid percent-encoded UTF-8.", rawName, "");
      }
      throw err;
    }
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

function parseMaxKeys(params: Map<string, string>, name: string): number {
  const raw = params.get(name);
  if (raw === undefined) return MAX_PAGE_ENTRIES;
  if (!INTEGER.test(raw) || raw.length > 10 || Number(raw) > INT32_MAX) {
    throw invalidArgument(`Provided ${name} not an integer or within integer range`, name, raw);
  }
  return Math.min(Number(raw), MAX_PAGE_ENTRIES);
}

function parseEncoding(params: Map<string, string>): boolean {
  const raw = params.get("encoding-type");
  if (raw === undefined) return false;
  if (raw.toLowerCase() !== "url") {
    throw invalidArgument("Invalid Encoding Method specified in Request", "encoding-type", raw);
  }
  return true;
}

function parseFetchOwner(params: Map<string, string>): boolean {
  const raw = params.get("fetch-owner");
  if (raw === undefined) return false;
  const lower = raw.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false" || lower === "") return false;
  throw invalidArgument("Invalid fetch-owner value", "fetch-owner", raw);
}

/** Drops undefined fields so parsed queries compare with toEqual. */
function defined<T extends object>(value: T): T {
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) delete (value as Record<string, unknown>)[k];
  }
  return value;
}

/**
 * Parses the raw query string (everything after `?`, undecoded) of one of the four listing
 * operations. Throws S3Error InvalidArgument for a bad `max-keys`, `encoding-type`,
 * `fetch-owner`, or a `version-id-marker` without `key-marker`.
 */
export function parseListingQuery(operation: ListingOperation, rawQuery: string): ListingQuery {
  const params = decodeListingQuery(rawQuery);
  const delimiter = params.get("delimiter");
  const base = {
    operation,
    prefix: params.get("prefix") ?? "",
    delimiter: delimiter === undefined || delimiter === "" ? undefined : delimiter,
    encodeUrl: parseEncoding(params),
  };
  switch (operation) {
    case "ListObjectsV2": {
      const token = params.get("continuation-token");
      return defined({
        ...base,
        maxKeys: parseMaxKeys(params, "max-keys"),
        fetchOwner: parseFetchOwner(params),
        marker: params.get("start-after"),
        // An empty token is treated as absent, as MinIO does; any other value must verify.
        continuationToken: token === "" ? undefined : token,
      });
    }
    case "ListObjects":
      return defined({
        ...base,
        maxKeys: parseMaxKeys(params, "max-keys"),
        fetchOwner: true,
        marker: params.get("marker"),
      });
    case "ListMultipartUploads": {
      const keyMarker = params.get("key-marker");
      return defined({
        ...base,
        maxKeys: parseMaxKeys(params, "max-uploads"),
        fetchOwner: true,
        marker: keyMarker,
        // "If key-marker is not specified, the upload-id-marker parameter is ignored."
        idMarker:
          keyMarker === undefined || keyMarker === ""
            ? undefined
            : emptyToUndefined(params.get("upload-id-marker")),
      });
    }
    case "ListObjectVersions": {
      const keyMarker = params.get("key-marker");
      const versionIdMarker = emptyToUndefined(params.get("version-id-marker"));
      if (versionIdMarker !== undefined && (keyMarker === undefined || keyMarker === "")) {
        throw invalidArgument(
          "A version-id marker cannot be specified without a key marker.",
          "version-id-marker",
          versionIdMarker,
        );
      }
      return defined({
        ...base,
        maxKeys: parseMaxKeys(params, "max-keys"),
        fetchOwner: true,
        marker: keyMarker,
        idMarker: versionIdMarker,
      });
    }
  }
}

function emptyToUndefined(value: string | undefined): string | undefined {
  return value === "" ? undefined : value;
}
