/**
 * A port of the parts of ruamel.yaml's Emitter (0.19, round-trip dumper, block style, width
 * 80, indent 2, unicode allowed) that DVCLive's files use: block mappings and sequences, empty
 * `[]` / `{}`, and plain, single- and double-quoted scalars with ruamel's line folding. Written
 * as recursion instead of ruamel's event state machine, but with its state (column,
 * whitespace, indention, the indent stack) and its write functions kept line for line, so the
 * bytes come out the same, quirks included (a trailing space before a word too long for its
 * line, `- ` for a null in a list). Positions count code points, as Python's str does.
 */
import { resolvesTo, type ScalarTag } from "./resolver.js";

export type YamlNode =
  | { kind: "scalar"; tag: ScalarTag; value: string }
  | { kind: "seq"; items: YamlNode[] }
  | { kind: "map"; entries: [YamlNode, YamlNode][] };

interface Analysis {
  scalar: string[];
  empty: boolean;
  multiline: boolean;
  allowFlowPlain: boolean;
  allowBlockPlain: boolean;
  allowSingleQuoted: boolean;
  allowDoubleQuoted: boolean;
}

type Style = "" | "'" | '"';

const BEST_INDENT = 2;
const BEST_WIDTH = 80;
const DASH_OFFSET = 0;
const MAX_SIMPLE_KEY_LENGTH = 128;
const LINE_BREAKS = "\n\x85\u2028\u2029";
const WHITESPACE = "\0 \t\r\n\x85\u2028\u2029";

const ESCAPE_REPLACEMENTS: Record<string, string> = {
  "\0": "0",
  "\x07": "a",
  "\x08": "b",
  "\x09": "t",
  "\x0A": "n",
  "\x0B": "v",
  "\x0C": "f",
  "\x0D": "r",
  "\x1B": "e",
  '"': '"',
  "\\": "\\",
  "\x85": "N",
  "\xA0": "_",
  "\u2028": "L",
  "\u2029": "P",
};

const code = (ch: string): number => ch.codePointAt(0)!;
const isPrintableAscii = (ch: string): boolean => code(ch) >= 0x20 && code(ch) <= 0x7e;
/** What ruamel writes as-is with allow_unicode (everything else printable goes escaped). */
const isUnicodePrintable = (ch: string): boolean => {
  const c = code(ch);
  return (
    (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff)
  );
};

/** ruamel's Indents: the stack of (indent, is-sequence) pairs. */
class Indents {
  readonly values: [number | null, boolean][] = [];
  append(value: number | null, seq: boolean): void {
    this.values.push([value, seq]);
  }
  pop(): number | null {
    return this.values.pop()![0];
  }
  seqSeq(): boolean {
    const n = this.values.length;
    return n >= 2 && this.values[n - 2]![1] && this.values[n - 1]![1];
  }
  lastSeq(): boolean {
    const n = this.values.length;
    return n >= 2 ? this.values[n - 2]![1] : false;
  }
  seqFlowAlign(seqIndent: number, column: number): number {
    const n = this.values.length;
    if (n < 2 || !this.values[n - 1]![1]) return 0;
    const base = this.values[n - 1]![0] ?? 0;
    return base + seqIndent - column - 1;
  }
}

interface NodeContext {
  root?: boolean;
  sequence?: boolean;
  mapping?: boolean;
  simpleKey?: boolean;
}

/** One YAML document as ruamel's round-trip dumper writes it (lines end in "\n"). */
export function emitYaml(root: YamlNode): string {
  const emitter = new Emitter();
  emitter.document(root);
  return emitter.output();
}

class Emitter {
  private readonly out: string[] = [];
  private readonly indents = new Indents();
  private indent: number | null = null;
  private flowLevel = 0;
  private column = 0;
  private whitespace = true;
  private indention = true;
  private noNewline = false;
  private openEnded = false;
  private rootContext = false;
  private sequenceContext = false;
  private mappingContext = false;
  private simpleKeyContext = false;

  output(): string {
    return this.out.join("");
  }

  document(root: YamlNode): void {
    // An implicit document start writes nothing.
    this.expectNode(root, { root: true });
    this.writeIndent(); // document end
    if (this.openEnded) {
      this.writeIndicator("...", true);
      this.writeIndent();
    }
  }

  private expectNode(node: YamlNode, context: NodeContext): void {
    this.rootContext = context.root ?? false;
    this.sequenceContext = context.sequence ?? false;
    this.mappingContext = context.mapping ?? false;
    this.simpleKeyContext = context.simpleKey ?? false;
    if (node.kind === "scalar") {
      let value = node.value;
      let style = this.chooseScalarStyle(node.tag, value);
      if (value === "" && style === "'" && node.tag === "null") {
        value = "null"; // ruamel's alt_null
        style = this.chooseScalarStyle(node.tag, value);
      }
      this.increaseIndent(true);
      this.processScalar(value, style);
      this.indent = this.indents.pop();
      return;
    }
    if (node.kind === "seq") {
      const flow = this.flowLevel > 0 || node.items.length === 0;
      if (flow) this.startFlowCollection("[", true);
      else this.startBlockSequence();
      if (this.indents.seqSeq()) {
        this.indention = true;
        this.noNewline = false;
      }
      if (flow) this.endFlowCollection("]");
      else this.blockSequenceItems(node.items);
      return;
    }
    if (this.flowLevel > 0 || node.entries.length === 0) {
      this.startFlowCollection("{", false);
      this.endFlowCollection("}");
    } else this.blockMapping(node.entries);
  }

  private increaseIndent(flow: boolean, sequence = false, indentless = false): void {
    this.indents.append(this.indent, sequence);
    if (this.indent === null) {
      this.indent = flow ? null : 0; // requested_indent is None
    } else if (!indentless) {
      this.indent += BEST_INDENT; // sequence and mapping indents are both 2
    }
  }

  /** Only empty flow collections are written (a flow collection is how ruamel writes them). */
  private startFlowCollection(start: "[" | "{", sequence: boolean): void {
    const ind = this.indents.seqFlowAlign(BEST_INDENT, this.column);
    this.writeIndicator(" ".repeat(Math.max(ind, 0)) + start, true, true);
    this.increaseIndent(true, sequence);
    this.flowLevel += 1;
  }

  private endFlowCollection(end: "]" | "}"): void {
    this.indent = this.indents.pop();
    this.flowLevel -= 1;
    this.writeIndicator(end, false);
    if (this.flowLevel === 0) this.writeLineBreak();
  }

  private startBlockSequence(): void {
    const indentless = this.mappingContext ? !this.indention : false;
    this.increaseIndent(false, true, indentless);
  }

  private blockSequenceItems(items: YamlNode[]): void {
    for (const item of items) {
      const nonl = this.column === 0 ? this.noNewline : false;
      this.writeIndent();
      this.writeIndicator(" ".repeat(DASH_OFFSET) + "-", true, false, true);
      if (nonl || DASH_OFFSET + 2 > BEST_INDENT) this.noNewline = true;
      this.expectNode(item, { sequence: true });
    }
    this.indent = this.indents.pop();
    this.noNewline = false;
  }

  private blockMapping(entries: [YamlNode, YamlNode][]): void {
    // compact_seq_map: a mapping in a sequence starts on the dash's line.
    this.increaseIndent(false, false);
    for (const [key, value] of entries) {
      this.writeIndent();
      if (this.checkSimpleKey(key)) {
        this.expectNode(key, { mapping: true, simpleKey: true });
        this.writeIndicator(":", false);
        this.expectNode(value, { mapping: true });
      } else {
        this.writeIndicator("?", true, false, true);
        this.expectNode(key, { mapping: true });
        this.writeIndent();
        this.writeIndicator(":", true, false, true);
        this.expectNode(value, { mapping: true });
      }
    }
    this.indent = this.indents.pop();
  }

  private checkSimpleKey(key: YamlNode): boolean {
    if (key.kind !== "scalar")
      return key.kind === "seq" ? key.items.length === 0 : key.entries.length === 0;
    const analysis = analyzeScalar(key.value);
    // ruamel counts the key's tag too ("!!str", 5 characters), though it never writes it.
    const length = analysis.scalar.length + `!!${key.tag}`.length;
    return length < MAX_SIMPLE_KEY_LENGTH && !analysis.multiline;
  }

  private chooseScalarStyle(tag: ScalarTag, value: string): Style {
    const analysis = analyzeScalar(value);
    // implicit[0]: read back plain, the value has its tag; implicit[2]: a standard tag.
    if (resolvesTo(value) === tag) {
      if (
        !(this.simpleKeyContext && (analysis.empty || analysis.multiline)) &&
        ((this.flowLevel > 0 && analysis.allowFlowPlain) ||
          (this.flowLevel === 0 && analysis.allowBlockPlain))
      )
        return "";
    }
    if (analysis.allowDoubleQuoted && (value.includes("'") || value.includes("\n"))) return '"';
    if (analysis.allowSingleQuoted && !(this.simpleKeyContext && analysis.multiline)) return "'";
    return '"';
  }

  private processScalar(value: string, style: Style): void {
    const text = Array.from(value);
    const split = !this.simpleKeyContext;
    if (this.sequenceContext && this.flowLevel === 0) this.writeIndent();
    if (style === '"') this.writeDoubleQuoted(text, split);
    else if (style === "'") this.writeSingleQuoted(text, split);
    else this.writePlain(text, split);
  }

  // Writers (ruamel's, in its order).

  private write(data: string, length = Array.from(data).length): void {
    this.column += length;
    this.out.push(data);
  }

  private writeIndicator(
    indicator: string,
    needWhitespace: boolean,
    whitespace = false,
    indention = false,
  ): void {
    const data = this.whitespace || !needWhitespace ? indicator : ` ${indicator}`;
    this.whitespace = whitespace;
    this.indention = this.indention && indention;
    this.openEnded = false;
    this.write(data);
  }

  private writeIndent(): void {
    const indent = this.indent ?? 0;
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) {
      if (this.noNewline) this.noNewline = false;
      else this.writeLineBreak();
    }
    if (this.column < indent) {
      this.whitespace = true;
      this.write(" ".repeat(indent - this.column));
    }
  }

  private writeLineBreak(data = "\n"): void {
    this.whitespace = true;
    this.indention = true;
    this.column = 0;
    this.out.push(data);
  }

  private writeLineBreaks(text: string[], start: number, end: number): void {
    if (text[start] === "\n") this.writeLineBreak();
    for (const br of text.slice(start, end)) this.writeLineBreak(br);
  }

  private writePlain(text: string[], split: boolean): void {
    if (this.rootContext) this.openEnded = true;
    if (text.length === 0) return;
    if (!this.whitespace) this.write(" ");
    this.whitespace = false;
    this.indention = false;
    let spaces = false;
    let breaks = false;
    let start = 0;
    for (let end = 0; end <= text.length; end++) {
      const ch = end < text.length ? text[end]! : null;
      if (spaces) {
        if (ch !== " ") {
          if (start + 1 === end && this.column >= BEST_WIDTH && split) {
            this.writeIndent();
            this.whitespace = false;
            this.indention = false;
          } else this.write(text.slice(start, end).join(""), end - start);
          start = end;
        }
      } else if (breaks) {
        if (ch === null || !LINE_BREAKS.includes(ch)) {
          this.writeLineBreaks(text, start, end);
          this.writeIndent();
          this.whitespace = false;
          this.indention = false;
          start = end;
        }
      } else if (ch === null || (" " + LINE_BREAKS).includes(ch)) {
        const length = end - start;
        // Words longer than the line get a line of their own.
        if (length + this.column > BEST_WIDTH && this.indent !== null && this.column > this.indent)
          this.writeIndent();
        this.write(text.slice(start, end).join(""), length);
        start = end;
      }
      if (ch !== null) {
        spaces = ch === " ";
        breaks = LINE_BREAKS.includes(ch);
      }
    }
  }

  private writeSingleQuoted(text: string[], split: boolean): void {
    this.writeIndicator("'", true);
    let spaces = false;
    let breaks = false;
    let start = 0;
    for (let end = 0; end <= text.length; end++) {
      const ch = end < text.length ? text[end]! : null;
      if (spaces) {
        if (ch === null || ch !== " ") {
          if (
            start + 1 === end &&
            this.column > BEST_WIDTH &&
            split &&
            start !== 0 &&
            end !== text.length
          )
            this.writeIndent();
          else this.write(text.slice(start, end).join(""), end - start);
          start = end;
        }
      } else if (breaks) {
        if (ch === null || !LINE_BREAKS.includes(ch)) {
          this.writeLineBreaks(text, start, end);
          this.writeIndent();
          start = end;
        }
      } else if (ch === null || (" " + LINE_BREAKS).includes(ch) || ch === "'") {
        if (start < end) {
          this.write(text.slice(start, end).join(""), end - start);
          start = end;
        }
      }
      if (ch === "'") {
        this.write("''", 2);
        start = end + 1;
      }
      if (ch !== null) {
        spaces = ch === " ";
        breaks = LINE_BREAKS.includes(ch);
      }
    }
    this.writeIndicator("'", false);
  }

  private writeDoubleQuoted(text: string[], split: boolean): void {
    this.writeIndicator('"', true);
    let start = 0;
    for (let end = 0; end <= text.length; end++) {
      const ch = end < text.length ? text[end]! : null;
      if (
        ch === null ||
        '"\\\x85\u2028\u2029\uFEFF'.includes(ch) ||
        !(isPrintableAscii(ch) || isUnicodePrintable(ch))
      ) {
        if (start < end) {
          this.write(text.slice(start, end).join(""), end - start);
          start = end;
        }
        if (ch !== null) {
          const c = code(ch);
          const data =
            ch in ESCAPE_REPLACEMENTS
              ? `\\${ESCAPE_REPLACEMENTS[ch]}`
              : c <= 0xff
                ? `\\x${hex(c, 2)}`
                : c <= 0xffff
                  ? `\\u${hex(c, 4)}`
                  : `\\U${hex(c, 8)}`;
          this.write(data);
          start = end + 1;
        }
      }
      if (
        end > 0 &&
        end < text.length - 1 &&
        (ch === " " || start >= end) &&
        this.column + (end - start) > BEST_WIDTH &&
        split
      ) {
        const needBackslash = this.needsBackslash(text, start, end);
        const data = text.slice(start, end).join("") + (needBackslash ? "\\" : "");
        if (start < end) start = end;
        this.write(data);
        this.writeIndent();
        this.whitespace = false;
        this.indention = false;
        if (text[start] === " ") {
          // Without a backslash the line break reads back as the space: leave it out.
          if (!needBackslash) start += 1;
          if (needBackslash) this.write("\\");
        }
      }
    }
    this.writeIndicator('"', false);
  }

  /** ruamel's test for whether a fold in a double-quoted scalar needs a trailing backslash. */
  private needsBackslash(text: string[], start: number, end: number): boolean {
    let spacePos = text.indexOf(" ", end);
    if (spacePos < 0) return true; // Python's str.index raises: keep the backslash
    const newline = text.slice(end, spacePos).indexOf("\n");
    if (newline >= 0) spacePos = end + newline;
    if (text[spacePos] === "\n" && text[spacePos + 1] !== " ") return true;
    const between = text.slice(end, spacePos);
    const next = text[spacePos + 1];
    if (next === undefined) return true; // IndexError in Python: keep the backslash
    return !(
      !between.includes('"') &&
      !between.includes("'") &&
      !" \n".includes(next) &&
      text.slice(end - 1, end + 1).join("") !== "  " &&
      start !== end
    );
  }
}

function hex(value: number, width: number): string {
  return value.toString(16).toUpperCase().padStart(width, "0");
}

/** ruamel's analyze_scalar (YAML 1.2, allow_unicode): which styles can write `value`. */
export function analyzeScalar(value: string): Analysis {
  const scalar = Array.from(value);
  if (scalar.length === 0)
    return {
      scalar,
      empty: true,
      multiline: false,
      allowFlowPlain: false,
      allowBlockPlain: true,
      allowSingleQuoted: true,
      allowDoubleQuoted: true,
    };
  let blockIndicators = false;
  let flowIndicators = false;
  let lineBreaks = false;
  let specialCharacters = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  if (value.startsWith("---") || value.startsWith("...")) {
    blockIndicators = true;
    flowIndicators = true;
  }
  let precededByWhitespace = true;
  let followedByWhitespace = scalar.length === 1 || WHITESPACE.includes(scalar[1]!);
  let previousSpace = false;
  let previousBreak = false;
  for (let index = 0; index < scalar.length;) {
    const ch = scalar[index]!;
    if (index === 0) {
      if ("#,[]{}&*!|>'\"%@`".includes(ch)) {
        flowIndicators = true;
        blockIndicators = true;
      }
      if ("?:".includes(ch)) {
        if (scalar.length === 1) flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      }
      if (ch === "-" && followedByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
    } else {
      if (",[]{}".includes(ch)) flowIndicators = true;
      if (ch === ":" && followedByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
      if (ch === "#" && precededByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
    }
    if (LINE_BREAKS.includes(ch)) lineBreaks = true;
    if (!(ch === "\n" || isPrintableAscii(ch))) {
      const c = code(ch);
      const unicode = (c === 0x85 || isUnicodePrintable(ch)) && c !== 0xfeff;
      if (!unicode) specialCharacters = true; // allow_unicode: printable unicode is fine
    }
    if (ch === " ") {
      if (index === 0) leadingSpace = true;
      if (index === scalar.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (LINE_BREAKS.includes(ch)) {
      if (index === 0) leadingBreak = true;
      if (index === scalar.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    index += 1;
    precededByWhitespace = WHITESPACE.includes(ch);
    followedByWhitespace = index + 1 >= scalar.length || WHITESPACE.includes(scalar[index + 1]!);
  }
  let allowFlowPlain = true;
  let allowBlockPlain = true;
  let allowSingleQuoted = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak)
    allowFlowPlain = allowBlockPlain = false;
  if (breakSpace) allowFlowPlain = allowBlockPlain = allowSingleQuoted = false;
  if (specialCharacters || spaceBreak) allowFlowPlain = allowBlockPlain = allowSingleQuoted = false;
  if (lineBreaks) allowFlowPlain = allowBlockPlain = false;
  if (flowIndicators) allowFlowPlain = false;
  if (blockIndicators) allowBlockPlain = false;
  return {
    scalar,
    empty: false,
    multiline: lineBreaks,
    allowFlowPlain,
    allowBlockPlain,
    allowSingleQuoted,
    allowDoubleQuoted: true,
  };
}
