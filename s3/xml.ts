/**
 * S3 XML documents: one import for every builder, parser and helper of xml-core, xml-list and
 * xml-documents.
 */
export * from "./xml-core.js";
export * from "./xml-list.js";
export * from "./xml-documents.js";
