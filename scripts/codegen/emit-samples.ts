/**
 * Emits sample values for the generated round-trip tests: for every message and version, a value
 * with a non-default value in every field the version carries (tagged fields included, plus an
 * unknown tagged field in flexible versions), and a second one with null in every nullable field.
 * Fields the version cannot carry hold their defaults, which is what decoding yields.
 */
import { type FieldSpec, inRange, type MessageSpec, structTypeOf } from './schema.ts';

export type SampleVariant = 'full' | 'nulls';

const SAMPLE_UUID = 'AQIDBAUGBwgJCgsMDQ4PEA'; // bytes 01..10

export class SampleEmitter {
  private readonly spec: MessageSpec;
  private counter = 0;

  constructor(spec: MessageSpec) {
    this.spec = spec;
  }

  private fieldsOf(struct: string): FieldSpec[] {
    const s = this.spec.structs.get(struct);
    if (s === undefined) throw new Error(`unknown struct ${struct}`);
    return s.fields;
  }

  /** The decoded default of a field, as a literal (structs expanded inline). */
  defaultOf(f: FieldSpec, v: number): string {
    const d = f.defaultValue;
    if (f.type.startsWith('[]')) return d === 'null' ? 'null' : '[]';
    switch (f.type) {
      case 'int8':
      case 'int16':
      case 'uint16':
      case 'int32':
      case 'uint32':
      case 'float64':
        return d === undefined || d === '' ? '0' : String(Number(d));
      case 'int64':
        return d === undefined || d === '' ? '0n' : `${BigInt(d)}n`;
      case 'bool':
        return d === 'true' ? 'true' : 'false';
      case 'string':
        return d === 'null' ? 'null' : JSON.stringify(d ?? '');
      case 'uuid':
        return `'AAAAAAAAAAAAAAAAAAAAAA'`;
      case 'bytes':
        return d === 'null' ? 'null' : 'Buffer.alloc(0)';
      case 'records':
        return f.nullableVersions !== null ? 'null' : 'Buffer.alloc(0)';
      default:
        if (d === 'null') return 'null';
        return `{ ${this.fieldsOf(f.type)
          .map((sf) => `${sf.prop}: ${this.defaultOf(sf, v)}`)
          .join(', ')} }`;
    }
  }

  private nonDefaultScalar(f: FieldSpec, type: string): string {
    const n = ++this.counter;
    const d = f.defaultValue;
    const pick = (candidate: number) => (String(candidate) === String(Number(d ?? 0)) ? candidate + 1 : candidate);
    switch (type) {
      case 'int8':
        return String(pick(1 + (n % 100)));
      case 'int16':
        return String(pick(-2 - (n % 1000)));
      case 'uint16':
        return String(pick(60000 + (n % 1000)));
      case 'int32':
        return String(pick(100000 + n));
      case 'uint32':
        return String(pick(4000000000 + n));
      case 'int64':
        return `${BigInt(d === undefined || d === '' ? 0 : d) === 1234567890123n + BigInt(n) ? 1n : 1234567890123n + BigInt(n)}n`;
      case 'float64':
        return String(n + 0.25);
      case 'bool':
        return f.defaultValue === 'true' ? 'false' : 'true';
      case 'string':
        return JSON.stringify(`${f.prop}-${n}-é`);
      case 'uuid':
        return `'${SAMPLE_UUID}'`;
      case 'bytes':
        return `Buffer.from([${n % 256}, 2, 3])`;
      case 'records':
        return `Buffer.from('records-${n}')`;
      default:
        throw new Error(`not a scalar: ${type}`);
    }
  }

  structSample(fields: FieldSpec[], v: number, variant: SampleVariant): string {
    const parts = fields.map((f) => `${f.prop}: ${this.fieldSample(f, v, variant)}`);
    if (variant === 'full' && inRange(this.spec.flexibleVersions, v)) {
      parts.push(`_unknownTaggedFields: [{ tag: 1000, data: Buffer.from([0xab, 0xcd]) }]`);
    }
    return `{ ${parts.join(', ')} }`;
  }

  fieldSample(f: FieldSpec, v: number, variant: SampleVariant): string {
    if (!inRange(f.versions, v)) return this.defaultOf(f, v);
    const nullable = inRange(f.nullableVersions, v);
    if (variant === 'nulls' && nullable) return 'null';
    const struct = structTypeOf(f);
    if (f.type.startsWith('[]')) {
      if (variant === 'nulls') return '[]';
      const elem = f.type.slice(2);
      if (struct !== undefined) return `[${this.structSample(this.fieldsOf(struct), v, variant)}]`;
      return `[${this.nonDefaultScalar(f, elem)}, ${this.nonDefaultScalar(f, elem)}]`;
    }
    if (struct !== undefined) return this.structSample(this.fieldsOf(struct), v, variant);
    return this.nonDefaultScalar(f, f.type);
  }

  rootSample(v: number, variant: SampleVariant): string {
    return this.structSample(this.spec.fields, v, variant);
  }
}
