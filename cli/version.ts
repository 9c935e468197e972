import { readFileSync } from "node:fs";

/** The package version, read once from package.json next to the built tree. */
export function packageVersion(): string {
  for (const rel of ["../../package.json", "../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "s3-migration-gateway" && pkg.version) return pkg.version;
    } catch {
      // try the next location: dist/cli/ when built, cli/ when run from source
    }
  }
  return "0.0.0";
}
