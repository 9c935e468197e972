// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".tools/", "coverage/", "test/fixtures/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        URL: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "no-console": "off",
    },
  },
  {
    // Only the CLI layer parses argv and exits (STYLE.md, rule 6).
    files: ["s3/**/*.ts", "gateway/**/*.ts", "s3migrate/**/*.ts", "s3find/**/*.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "exit", message: "Only cli/ may call process.exit." },
        { object: "process", property: "argv", message: "Only cli/ reads argv." },
      ],
    },
  },
  {
    // s3/ is the framework-free protocol kernel (STYLE.md, rule 1).
    files: ["s3/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { paths: ["fastify", "commander", "prom-client", "pino"], patterns: ["@fastify/*"] },
      ],
    },
  },
);
