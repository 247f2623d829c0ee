/**
 * Reading Kafka's message-definition JSON (see the README beside the schemas): comments are
 * stripped, version ranges parsed, and every struct (nested, common) collected with its fields.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** An inclusive version range; `null` is the "none" range. */
export interface VersionRange {
  min: number;
  max: number; // Number.POSITIVE_INFINITY for "N+"
}

export interface FieldSpec {
  name: string; // as in the JSON (PascalCase, or camelCase in coordinator records)
  prop: string; // TypeScript property name
  type: string; // as in the JSON: "int32", "[]int32", "[]Foo", "Foo"
  versions: VersionRange | null;
  nullableVersions: VersionRange | null;
  taggedVersions: VersionRange | null;
  flexibleVersions: VersionRange | null | undefined; // per-field override (undefined: the message's)
  tag: number | undefined;
  ignorable: boolean;
  defaultValue: string | undefined;
  about: string | undefined;
  fields: FieldSpec[] | undefined; // for inline struct types
}

export interface StructSpec {
  name: string; // the struct's schema name ("TopicProduceData") or the message name for the root
  fields: FieldSpec[];
}

export interface MessageSpec {
  file: string;
  apiKey: number | undefined;
  type: 'request' | 'response' | 'header' | 'data' | string;
  name: string;
  listeners: string[];
  validVersions: VersionRange;
  flexibleVersions: VersionRange | null;
  deprecatedVersions: VersionRange | null;
  latestVersionUnstable: boolean;
  fields: FieldSpec[];
  /** Every named struct reachable from the message (nested and common), by schema name. */
  structs: Map<string, StructSpec>;
}

/** Removes `//` comments that are outside string literals. */
export function stripComments(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      let inString = false;
      for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (c === '"' && line[i - 1] !== '\\') inString = !inString;
        else if (!inString && c === '/' && line[i + 1] === '/') return line.slice(0, i);
      }
      return line;
    })
    .join('\n');
}

export function parseVersions(spec: unknown): VersionRange | null {
  if (spec === undefined || spec === null) return null;
  const s = String(spec).trim();
  if (s === 'none' || s === '') return null;
  if (s.endsWith('+')) return { min: Number(s.slice(0, -1)), max: Number.POSITIVE_INFINITY };
  const dash = s.indexOf('-');
  if (dash > 0) return { min: Number(s.slice(0, dash)), max: Number(s.slice(dash + 1)) };
  const n = Number(s);
  if (!Number.isInteger(n)) throw new Error(`bad version range ${s}`);
  return { min: n, max: n };
}

export function inRange(r: VersionRange | null, v: number): boolean {
  return r !== null && v >= r.min && v <= r.max;
}

export function intersect(a: VersionRange | null, b: VersionRange | null): VersionRange | null {
  if (a === null || b === null) return null;
  const min = Math.max(a.min, b.min);
  const max = Math.min(a.max, b.max);
  return min <= max ? { min, max } : null;
}

function propName(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

interface RawField {
  name: string;
  type: string;
  versions?: string;
  nullableVersions?: string;
  taggedVersions?: string;
  flexibleVersions?: string;
  tag?: number;
  ignorable?: boolean;
  default?: string | number | boolean;
  about?: string;
  fields?: RawField[];
}

function parseField(raw: RawField): FieldSpec {
  return {
    name: raw.name,
    prop: propName(raw.name),
    type: raw.type,
    // A tagged-only field (no "versions", as in TransactionLogValue) exists in its tagged versions (Kafka's FieldSpec).
    versions: parseVersions(raw.versions ?? raw.taggedVersions),
    nullableVersions: parseVersions(raw.nullableVersions),
    taggedVersions: parseVersions(raw.taggedVersions),
    flexibleVersions: raw.flexibleVersions === undefined ? undefined : parseVersions(raw.flexibleVersions),
    tag: raw.tag,
    ignorable: raw.ignorable === true,
    defaultValue: raw.default === undefined ? undefined : String(raw.default),
    about: raw.about,
    fields: raw.fields?.map(parseField),
  };
}

/** The struct name a field refers to, or undefined for primitives and arrays of primitives. */
export function structTypeOf(field: FieldSpec): string | undefined {
  const t = field.type.startsWith('[]') ? field.type.slice(2) : field.type;
  return /^[A-Z]/.test(t) ? t : undefined;
}

function collectStructs(fields: FieldSpec[], into: Map<string, StructSpec>): void {
  for (const f of fields) {
    const struct = structTypeOf(f);
    if (struct !== undefined && f.fields !== undefined) {
      if (into.has(struct)) throw new Error(`struct ${struct} defined twice`);
      into.set(struct, { name: struct, fields: f.fields });
      collectStructs(f.fields, into);
    }
  }
}

export function loadMessage(path: string): MessageSpec {
  const raw = JSON.parse(stripComments(readFileSync(path, 'utf8')));
  const validVersions = parseVersions(raw.validVersions);
  if (validVersions === null) throw new Error(`${path}: no validVersions`);
  const fields: FieldSpec[] = (raw.fields ?? []).map(parseField);
  const structs = new Map<string, StructSpec>();
  for (const common of raw.commonStructs ?? []) {
    const s = { name: common.name as string, fields: (common.fields as RawField[]).map(parseField) };
    structs.set(s.name, s);
    collectStructs(s.fields, structs);
  }
  collectStructs(fields, structs);
  return {
    file: path,
    apiKey: raw.apiKey,
    type: raw.type,
    name: raw.name,
    listeners: raw.listeners ?? [],
    validVersions,
    flexibleVersions: parseVersions(raw.flexibleVersions),
    deprecatedVersions: parseVersions(raw.deprecatedVersions),
    latestVersionUnstable: raw.latestVersionUnstable === true,
    fields,
    structs,
  };
}

export function loadDirectory(dir: string): MessageSpec[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => loadMessage(join(dir, f)));
}
