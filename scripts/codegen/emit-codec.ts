/**
 * Emits the TypeScript types, decoder and encoder of one message (and of every struct inside it).
 * One function per struct takes the message version and branches on it, which keeps the
 * generated code compact while staying monomorphic on the hot path.
 */
import { type FieldSpec, inRange, intersect, type MessageSpec, structTypeOf, type VersionRange } from './schema.ts';

const INT_TYPES: Record<string, { read: string; write: string; bits: number; unsigned: boolean }> = {
  int8: { read: 'int8', write: 'int8', bits: 8, unsigned: false },
  int16: { read: 'int16', write: 'int16', bits: 16, unsigned: false },
  uint16: { read: 'uint16', write: 'uint16', bits: 16, unsigned: true },
  int32: { read: 'int32', write: 'int32', bits: 32, unsigned: false },
  uint32: { read: 'uint32', write: 'uint32', bits: 32, unsigned: true },
};

/** Source of a condition "v is in range r", simplified against the message's valid versions. */
export function versionCond(r: VersionRange | null, valid: VersionRange, v = 'v'): string {
  const x = intersect(r, valid);
  if (x === null) return 'false';
  const parts: string[] = [];
  if (x.min > valid.min) parts.push(`${v} >= ${x.min}`);
  if (x.max < valid.max) parts.push(`${v} <= ${x.max}`);
  return parts.length === 0 ? 'true' : parts.join(' && ');
}

export class MessageEmitter {
  readonly spec: MessageSpec;
  private out: string[] = [];
  /** Structs used as single (non-array) fields need default factories and default checks. */
  private singleStructs = new Set<string>();

  constructor(spec: MessageSpec) {
    this.spec = spec;
    const visit = (fields: FieldSpec[]) => {
      for (const f of fields) {
        const s = structTypeOf(f);
        if (s !== undefined && !f.type.startsWith('[]')) this.singleStructs.add(s);
        if (f.fields) visit(f.fields);
      }
    };
    visit(spec.fields);
    for (const s of spec.structs.values()) visit(s.fields);
  }

  typeName(struct: string): string {
    // Kafka often names structs after their message already (MetadataResponseTopic): no double prefix.
    return struct.startsWith(this.spec.name) ? struct : `${this.spec.name}${struct}`;
  }

  private get valid(): VersionRange {
    return this.spec.validVersions;
  }

  /** Nullable in at least one version where the field exists. */
  private isNullable(f: FieldSpec): boolean {
    return intersect(f.nullableVersions, intersect(f.versions, this.valid)) !== null;
  }

  private flexCond(f: FieldSpec): string {
    if (f.flexibleVersions !== undefined) return versionCond(f.flexibleVersions, this.valid);
    return 'flex';
  }

  private nullableCond(f: FieldSpec): string {
    return versionCond(f.nullableVersions, this.valid);
  }

  private tsType(f: FieldSpec, input: boolean): string {
    const elem = (t: string): string => {
      switch (t) {
        case 'int8':
        case 'int16':
        case 'uint16':
        case 'int32':
        case 'uint32':
        case 'float64':
          return 'number';
        case 'int64':
          return 'bigint';
        case 'bool':
          return 'boolean';
        case 'string':
        case 'uuid':
          return 'string';
        case 'bytes':
        case 'records':
          return input ? 'Uint8Array' : 'Buffer';
        default:
          return input ? `${this.typeName(t)}Input` : this.typeName(t);
      }
    };
    let t = f.type.startsWith('[]') ? `${elem(f.type.slice(2))}[]` : elem(f.type);
    if (f.type.startsWith('[]') && input) t = `readonly ${t}`;
    if (this.isNullable(f) || this.defaultLiteral(f) === 'null') t += ' | null';
    return t;
  }

  /** The default value of a field as a TypeScript expression. */
  defaultLiteral(f: FieldSpec): string {
    const d = f.defaultValue;
    if (f.type.startsWith('[]')) return d === 'null' ? 'null' : '[]';
    if (INT_TYPES[f.type] !== undefined) return d === undefined || d === '' ? '0' : String(Number(d));
    switch (f.type) {
      case 'int64':
        return d === undefined || d === '' ? '0n' : `${BigInt(d)}n`;
      case 'float64':
        return d === undefined || d === '' ? '0' : String(Number(d));
      case 'bool':
        return d === 'true' ? 'true' : 'false';
      case 'string':
        if (d === 'null') return 'null';
        return JSON.stringify(d ?? '');
      case 'uuid':
        return 'ZERO_UUID';
      case 'bytes':
        return d === 'null' ? 'null' : 'EMPTY_BUFFER';
      case 'records':
        return this.isNullable(f) ? 'null' : 'EMPTY_BUFFER';
      default:
        return d === 'null' ? 'null' : `default${this.typeName(f.type)}()`;
    }
  }

  /** Source of a check that `x` (a possibly undefined input value) equals the field's default. */
  private isDefaultExpr(f: FieldSpec, x: string): string {
    const d = this.defaultLiteral(f);
    if (f.type.startsWith('[]'))
      return d === 'null'
        ? `(${x} === undefined || ${x} === null)`
        : `(${x} === undefined || (${x} !== null && ${x}.length === 0))`;
    const struct = structTypeOf(f);
    if (struct !== undefined) {
      if (d === 'null') return `(${x} === undefined || ${x} === null)`;
      return `isDefaultInput(${x}, default${this.typeName(struct)}() as unknown as Record<string, unknown>)`;
    }
    if (f.type === 'bytes' || f.type === 'records') {
      return d === 'null'
        ? `(${x} === undefined || ${x} === null)`
        : `(${x} === undefined || (${x} !== null && ${x}.length === 0))`;
    }
    return `(${x} === undefined || ${x} === ${d})`;
  }

  private readElem(t: string, r: string, flexC: string, nullableArg: string): string {
    const int = INT_TYPES[t];
    if (int !== undefined) return `${r}.${int.read}()`;
    switch (t) {
      case 'int64':
        return `${r}.int64()`;
      case 'float64':
        return `${r}.float64()`;
      case 'bool':
        return `${r}.bool()`;
      case 'uuid':
        return `${r}.uuid()`;
      case 'string':
        return `readString(${r}, ${flexC}, ${nullableArg})`;
      case 'bytes':
      case 'records':
        return `readBytes(${r}, ${flexC}, ${nullableArg})`;
      default:
        return `read${this.typeName(t)}(${r}, v)`;
    }
  }

  /** Statements assigning the decoded field value to `target`. */
  private readField(f: FieldSpec, target: string, r: string, indent: string): string[] {
    const flexC = this.flexCond(f);
    const nullC = this.nullableCond(f);
    const struct = structTypeOf(f);
    if (f.type.startsWith('[]')) {
      const elemType = f.type.slice(2);
      const elemTs = this.tsType({ ...f, type: elemType, nullableVersions: null, defaultValue: undefined }, false);
      return [
        `${indent}{`,
        `${indent}  const n = readArrayLength(${r}, ${flexC}, ${nullC});`,
        `${indent}  if (n < 0) ${target} = null as never;`,
        `${indent}  else {`,
        `${indent}    const a: ${elemTs}[] = [];`,
        `${indent}    for (let i = 0; i < n; i++) a.push(${this.readElem(elemType, r, flexC, 'false')}${elemType === 'string' || elemType === 'bytes' ? ' as never' : ''});`,
        `${indent}    ${target} = a;`,
        `${indent}  }`,
        `${indent}}`,
      ];
    }
    if (struct !== undefined) {
      if (this.isNullable(f)) {
        return [
          `${indent}if (${nullC === 'false' ? 'true' : `!(${nullC})`} || readStructPresence(${r})) ${target} = read${this.typeName(struct)}(${r}, v);`,
          `${indent}else ${target} = null;`,
        ];
      }
      return [`${indent}${target} = read${this.typeName(struct)}(${r}, v);`];
    }
    const cast =
      (f.type === 'string' || f.type === 'bytes' || f.type === 'records') && !this.isNullable(f) ? ' as never' : '';
    return [`${indent}${target} = ${this.readElem(f.type, r, flexC, nullC)}${cast};`];
  }

  private writeElem(t: string, w: string, x: string, flexC: string, nullableArg: string, field: string): string {
    const int = INT_TYPES[t];
    if (int !== undefined) return `${w}.${int.write}(${x});`;
    switch (t) {
      case 'int64':
        return `${w}.int64(${x});`;
      case 'float64':
        return `${w}.float64(${x});`;
      case 'bool':
        return `${w}.bool(${x});`;
      case 'uuid':
        return `${w}.uuid(${x});`;
      case 'string':
        return `writeString(${w}, ${x}, ${flexC}, ${nullableArg}, '${field}', v);`;
      case 'bytes':
      case 'records':
        return `writeBytes(${w}, ${x}, ${flexC}, ${nullableArg}, '${field}', v);`;
      default:
        return `write${this.typeName(t)}(${w}, v, ${x});`;
    }
  }

  /** Statements writing the field value expression `x` (already defaulted). */
  private writeField(f: FieldSpec, x: string, w: string, indent: string): string[] {
    const flexC = this.flexCond(f);
    const nullC = this.nullableCond(f);
    const struct = structTypeOf(f);
    const field = `${this.spec.name}.${f.name}`;
    if (f.type.startsWith('[]')) {
      const elemType = f.type.slice(2);
      return [
        `${indent}{`,
        `${indent}  const a = ${x};`,
        `${indent}  writeArrayLength(${w}, a, ${flexC}, ${nullC}, '${field}', v);`,
        `${indent}  if (a !== null) for (const e of a) ${this.writeElem(elemType, w, 'e', flexC, 'false', field)}`,
        `${indent}}`,
      ];
    }
    if (struct !== undefined) {
      if (this.isNullable(f) || this.defaultLiteral(f) === 'null') {
        return [
          `${indent}{`,
          `${indent}  const s = ${x};`,
          `${indent}  if (s === null) {`,
          `${indent}    if (!(${nullC})) throw unencodable('${field}', v, 'is null but not nullable');`,
          `${indent}    ${w}.int8(-1);`,
          `${indent}  } else {`,
          ...(nullC === 'false' ? [] : [`${indent}    if (${nullC}) ${w}.int8(1);`]),
          `${indent}    write${this.typeName(struct)}(${w}, v, s);`,
          `${indent}  }`,
          `${indent}}`,
        ];
      }
      return [`${indent}write${this.typeName(struct)}(${w}, v, ${x});`];
    }
    return [`${indent}${this.writeElem(f.type, w, x, flexC, nullC, field)}`];
  }

  /** The input value of a field with its default applied. */
  private inputValue(f: FieldSpec): string {
    const d = this.defaultLiteral(f);
    const struct = structTypeOf(f);
    const fallback = struct !== undefined && !f.type.startsWith('[]') && d !== 'null' ? '{}' : d;
    // Explicit null must survive for nullable fields, so `??` is only used where null is invalid.
    if (this.isNullable(f)) return `(m.${f.prop} === undefined ? ${fallback} : m.${f.prop})`;
    return `(m.${f.prop} ?? ${fallback})`;
  }

  /** Versions where the field is a regular (positional) field: its versions minus its tagged versions. */
  private regularCond(f: FieldSpec): string {
    if (f.taggedVersions === null) return versionCond(f.versions, this.valid);
    const before = { min: 0, max: f.taggedVersions.min - 1 };
    return versionCond(intersect(f.versions, before), this.valid);
  }

  private taggedCond(f: FieldSpec): string {
    return versionCond(intersect(f.versions, f.taggedVersions), this.valid);
  }

  emitStruct(structName: string, fields: FieldSpec[], isRoot: boolean): void {
    const type = this.typeName(structName);
    const flexible = this.spec.flexibleVersions !== null;
    const flexLine = `  const flex = ${versionCond(this.spec.flexibleVersions, this.valid)};`;
    const o = this.out;

    // Types.
    o.push(`export interface ${type} {`);
    for (const f of fields) {
      if (f.about) o.push(`  /** ${f.about.replace(/\*\//g, '*\\/')} */`);
      o.push(`  ${f.prop}: ${this.tsType(f, false)};`);
    }
    if (flexible) o.push('  _unknownTaggedFields?: UnknownTaggedField[];');
    o.push('}', '');
    o.push(`export interface ${type}Input {`);
    for (const f of fields) o.push(`  ${f.prop}?: ${this.tsType(f, true)} | undefined;`);
    if (flexible) o.push('  _unknownTaggedFields?: readonly UnknownTaggedField[] | undefined;');
    o.push('}', '');

    if (!isRoot && this.singleStructs.has(structName)) {
      o.push(`export function default${type}(): ${type} {`);
      o.push(`  return { ${fields.map((f) => `${f.prop}: ${this.defaultLiteral(f)}`).join(', ')} };`);
      o.push('}', '');
    }

    // Decoder.
    const tagged = fields.filter((f) => f.tag !== undefined).sort((a, b) => (a.tag ?? 0) - (b.tag ?? 0));
    o.push(`${isRoot ? 'export ' : ''}function read${type}(r: Reader, v: number): ${type} {`);
    if (isRoot) {
      o.push(`  if (v < ${this.valid.min} || v > ${this.valid.max}) throw unsupportedVersion('${this.spec.name}', v);`);
    }
    o.push(flexLine);
    for (const f of fields) {
      o.push(`  let ${f.prop}: ${this.tsType(f, false)} = ${this.defaultLiteral(f)};`);
      const cond = this.regularCond(f);
      if (cond === 'false') continue;
      if (cond === 'true') o.push(...this.readField(f, f.prop, 'r', '  '));
      else {
        o.push(`  if (${cond}) {`);
        o.push(...this.readField(f, f.prop, 'r', '    '));
        o.push('  }');
      }
    }
    const props = fields.map((f) => f.prop).join(', ');
    if (flexible) {
      o.push('  let unknownTagged: UnknownTaggedField[] | undefined;');
      o.push('  if (flex) {');
      if (tagged.length === 0) o.push('    unknownTagged = r.taggedFields(null);');
      else {
        o.push('    unknownTagged = r.taggedFields((tag, t) => {');
        o.push('      switch (tag) {');
        for (const f of tagged) {
          o.push(`        case ${f.tag}:`);
          o.push(`          if (!(${this.taggedCond(f)})) return false;`);
          o.push(...this.readField(f, f.prop, 't', '          '));
          o.push('          return true;');
        }
        o.push('      }', '      return false;', '    });');
      }
      o.push('  }');
      o.push(`  const out: ${type} = { ${props} };`);
      o.push('  if (unknownTagged !== undefined) out._unknownTaggedFields = unknownTagged;');
      o.push('  return out;');
    } else {
      o.push(`  return { ${props} };`);
    }
    o.push('}', '');

    // Encoder.
    o.push(`${isRoot ? 'export ' : ''}function write${type}(w: Writer, v: number, m: ${type}Input): void {`);
    if (isRoot) {
      o.push(`  if (v < ${this.valid.min} || v > ${this.valid.max}) throw unsupportedVersion('${this.spec.name}', v);`);
    }
    o.push(flexLine);
    for (const f of fields) {
      const cond = this.regularCond(f);
      const present = versionCond(f.versions, this.valid);
      const lines = this.writeField(f, this.inputValue(f), 'w', '    ');
      const absentCheck =
        !f.ignorable && present !== 'true'
          ? `if (!(${present}) && !${this.isDefaultExpr(f, `m.${f.prop}`)}) throw unencodable('${this.spec.name}.${f.name}', v, 'has a non-default value but the version cannot carry it');`
          : '';
      if (cond === 'true') o.push(...lines.map((l) => l.slice(2)));
      else if (cond !== 'false') {
        o.push(`  if (${cond}) {`, ...lines, '  }');
      }
      if (absentCheck) o.push(`  ${absentCheck}`);
    }
    if (flexible) {
      o.push('  if (flex) {');
      if (tagged.length === 0) o.push('    w.taggedFields(null, m._unknownTaggedFields);');
      else {
        o.push('    let known: UnknownTaggedField[] | null = null;');
        for (const f of tagged) {
          o.push(`    if ((${this.taggedCond(f)}) && !${this.isDefaultExpr(f, `m.${f.prop}`)}) {`);
          o.push('      const t = new Writer(64);');
          o.push(...this.writeField(f, this.inputValue(f), 't', '      '));
          o.push(`      (known ??= []).push({ tag: ${f.tag}, data: t.toBuffer() });`);
          o.push('    }');
        }
        o.push('    w.taggedFields(known, m._unknownTaggedFields);');
      }
      o.push('  }');
    }
    o.push('}', '');
  }

  /** All structs of the message (nested first), then the root. */
  emit(): string {
    for (const s of this.spec.structs.values()) this.emitStruct(s.name, s.fields, false);
    this.emitStruct(this.spec.name, this.spec.fields, true);
    return this.out.join('\n');
  }

  /** Whether the message has any field that needs the given helper (keeps imports lint-clean). */
  uses(what: 'string' | 'bytes' | 'array' | 'struct' | 'uuid' | 'defaultStruct' | 'absentCheck'): boolean {
    const all: FieldSpec[] = [...this.spec.fields, ...[...this.spec.structs.values()].flatMap((s) => s.fields)];
    switch (what) {
      case 'string':
        return all.some((f) => f.type === 'string' || f.type === '[]string');
      case 'bytes':
        return all.some((f) => f.type === 'bytes' || f.type === 'records');
      case 'array':
        return all.some((f) => f.type.startsWith('[]'));
      case 'struct':
        return all.some((f) => structTypeOf(f) !== undefined && !f.type.startsWith('[]') && this.isNullable(f));
      case 'uuid':
        return all.some((f) => f.type === 'uuid');
      case 'defaultStruct':
        return all.some(
          (f) =>
            structTypeOf(f) !== undefined &&
            !f.type.startsWith('[]') &&
            this.defaultLiteral(f) !== 'null' &&
            ((!f.ignorable && versionCond(f.versions, this.valid) !== 'true') || f.tag !== undefined),
        );
      case 'absentCheck':
        return all.some((f) => !f.ignorable && versionCond(f.versions, this.valid) !== 'true');
    }
  }

  /** For callers that need to know if a root field exists at a version (tests). */
  static fieldIn(f: FieldSpec, v: number): boolean {
    return inRange(f.versions, v);
  }
}
