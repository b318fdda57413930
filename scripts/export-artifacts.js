#!/usr/bin/env node
// Writes crates/vouch-contracts/artifacts/ from forge's build output (called by scripts/export-artifacts.sh, after
// `forge build src`). Usage: node scripts/export-artifacts.js <contracts dir> <artifacts dir>
//
// For each deployable contract:
//   <Name>.abi.json   the ABI array: entries sorted (type, name, signature), object keys sorted, 2-space indent
//   <Name>.bin        the creation bytecode, lowercase hex without 0x, library placeholders `__$<34 hex>$__` left in
//   <Name>.link.json  only for contracts that link libraries: forge's linkReferences of the creation bytecode
// and, for all of them together,
//   enums.json        the variants of every Solidity enum an exported ABI names (the ABI itself only says uint8),
//                     read from the sources, so the Rust errors can print `status Requested` instead of `status 1`
//
// Which forge artifact: VouchProtocol is compiled under the `compilation_restrictions` profile of foundry.toml
// (optimizer_runs 200, to fit EIP-170), so forge writes its code once, as out/VouchProtocol.sol/VouchProtocol.json.
// Contracts it imports (ProtocolAdmin, KeyRegistry, ...) are then compiled under both profiles and forge may write
// out/<File>.sol/<Name>.json (default profile) plus <Name>.<profile>.json, depending on what the last incremental
// build recompiled. We always take the default-profile file, <Name>.json, and check its optimizer runs against
// foundry.toml, so the export does not depend on the cache's history.
//
// Nothing is written unless every contract exports cleanly; files whose content is unchanged are not rewritten; any
// other file in the artifacts directory is removed (the directory belongs to this script).
"use strict";
const fs = require("fs");
const path = require("path");

// name → source path; the deployment order of docs/protocol.md.
const CONTRACTS = [
  ["VouchUSD", "src/tokens/VouchUSD.sol"],
  ["StakeToken", "src/tokens/StakeToken.sol"],
  ["KeyRegistry", "src/KeyRegistry.sol"],
  ["VouchStaking", "src/staking/VouchStaking.sol"],
  ["ProtocolAdmin", "src/protocol/ProtocolAdmin.sol"],
  ["VouchProtocol", "src/protocol/VouchProtocol.sol"],
  ["VouchSlasher", "src/slashing/VouchSlasher.sol"],
];

function fail(msg) {
  console.error(`export-artifacts: ${msg}`);
  process.exit(1);
}

const [contractsDir, outDir] = process.argv.slice(2);
if (!contractsDir || !outDir) fail("usage: export-artifacts.js <contracts dir> <artifacts dir>");

// --- foundry.toml: the optimizer runs each artifact must have been compiled with ---
const foundryToml = fs.readFileSync(path.join(contractsDir, "foundry.toml"), "utf8");
const defaultRuns = Number((/^\s*optimizer_runs\s*=\s*(\d+)/m.exec(foundryToml) || fail("no optimizer_runs in foundry.toml"))[1]);
const restrictedRuns = {};
for (const m of foundryToml.matchAll(/\{\s*paths\s*=\s*"([^"]+)"\s*,\s*optimizer_runs\s*=\s*(\d+)\s*\}/g)) {
  restrictedRuns[m[1]] = Number(m[2]);
}

// --- canonical JSON: sorted keys, 2-space indent, trailing newline ---
function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys(v[k]);
    return o;
  }
  return v;
}
const canonical = (v) => JSON.stringify(sortKeys(v), null, 2) + "\n";

function canonicalType(p) {
  if (!p.type.startsWith("tuple")) return p.type;
  return "(" + (p.components || []).map(canonicalType).join(",") + ")" + p.type.slice("tuple".length);
}
const TYPE_RANK = { constructor: 0, fallback: 1, receive: 2, function: 3, event: 4, error: 5 };
function entryKey(e) {
  const sig = `${e.name || ""}(${(e.inputs || []).map(canonicalType).join(",")})`;
  return [TYPE_RANK[e.type] ?? 9, sig];
}
function sortAbi(abi) {
  return [...abi].sort((a, b) => {
    const [ra, sa] = entryKey(a);
    const [rb, sb] = entryKey(b);
    return ra - rb || (sa < sb ? -1 : sa > sb ? 1 : 0);
  });
}

// --- enums: `enum Contract.Name` internal types, resolved against the sources ---
function stripComments(src) {
  // Removes comments and the contents of string literals (which may contain braces), keeping offsets irrelevant.
  return src.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'/g, (m) =>
    m.startsWith("/") ? " " : '""',
  );
}
function listSol(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listSol(p));
    else if (e.name.endsWith(".sol")) out.push(p);
  }
  return out.sort();
}
const sources = listSol(path.join(contractsDir, "src")).map((f) => ({
  file: path.relative(contractsDir, f),
  code: stripComments(fs.readFileSync(f, "utf8")),
}));
function bodyOf(code, openBrace) {
  let depth = 0;
  for (let i = openBrace; i < code.length; i++) {
    if (code[i] === "{") depth++;
    else if (code[i] === "}" && --depth === 0) return code.slice(openBrace + 1, i);
  }
  fail("unbalanced braces while reading an enum's scope");
}
function enumsIn(code) {
  const found = {};
  for (const m of code.matchAll(/\benum\s+(\w+)\s*\{([^}]*)\}/g)) {
    found[m[1]] = m[2].split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  }
  return found;
}
function resolveEnum(qualified) {
  const dot = qualified.lastIndexOf(".");
  const scope = dot < 0 ? null : qualified.slice(0, dot);
  const name = qualified.slice(dot + 1);
  const hits = [];
  for (const { file, code } of sources) {
    if (scope === null) {
      if (enumsIn(code)[name]) hits.push({ file, variants: enumsIn(code)[name] });
      continue;
    }
    const decl = new RegExp(`\\b(?:contract|interface|library)\\s+${scope}\\b[^{]*\\{`).exec(code);
    if (!decl) continue;
    const variants = enumsIn(bodyOf(code, decl.index + decl[0].length - 1))[name];
    if (variants) hits.push({ file, variants });
  }
  if (hits.length !== 1) {
    fail(`enum ${qualified}: found ${hits.length} definitions in contracts/src (${hits.map((h) => h.file).join(", ")})`);
  }
  return hits[0].variants;
}
function collectEnums(params, into) {
  for (const p of params || []) {
    const t = p.internalType || "";
    if (t.startsWith("enum ")) into.add(t.slice("enum ".length).replace(/(\[\d*\])+$/, ""));
    collectEnums(p.components, into);
  }
}

// --- export ---
const files = {};
const enumNames = new Set();
for (const [name, source] of CONTRACTS) {
  const artifactPath = path.join(contractsDir, "out", path.basename(source), `${name}.json`);
  if (!fs.existsSync(artifactPath)) fail(`${artifactPath} is missing: did forge build src succeed?`);
  const artifact = JSON.parse(fs.readFileSync(artifactPath, "utf8"));

  const target = artifact.metadata?.settings?.compilationTarget || {};
  if (target[source] !== name) {
    fail(`${artifactPath} was compiled from ${JSON.stringify(target)}, expected ${source}:${name}`);
  }
  const runs = artifact.metadata?.settings?.optimizer?.runs;
  const wantRuns = restrictedRuns[source] ?? defaultRuns;
  if (runs !== wantRuns) fail(`${artifactPath}: optimizer runs ${runs}, foundry.toml says ${wantRuns} for ${source}`);

  const code = artifact.bytecode?.object;
  if (typeof code !== "string") fail(`${artifactPath} has no creation bytecode`);
  const hex = code.replace(/^0x/, "").toLowerCase();
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^(?:[0-9a-f]|__\$[0-9a-f]{34}\$__)*$/.test(hex)) {
    fail(`${artifactPath}: creation bytecode is not hex with library placeholders`);
  }

  files[`${name}.abi.json`] = canonical(sortAbi(artifact.abi));
  files[`${name}.bin`] = hex + "\n";

  const links = artifact.bytecode.linkReferences || {};
  let placeholders = 0;
  for (const libs of Object.values(links)) {
    for (const refs of Object.values(libs)) {
      for (const { start, length } of refs) {
        const at = hex.slice(start * 2, (start + length) * 2);
        if (length !== 20 || !/^__\$[0-9a-f]{34}\$__$/.test(at)) {
          fail(`${artifactPath}: link reference at byte ${start} does not point at a placeholder`);
        }
        placeholders++;
      }
    }
  }
  if (placeholders !== (hex.match(/__\$/g) || []).length) {
    fail(`${artifactPath}: the bytecode's placeholders and its link references disagree`);
  }
  if (placeholders > 0) files[`${name}.link.json`] = canonical(links);

  for (const e of artifact.abi) {
    collectEnums(e.inputs, enumNames);
    collectEnums(e.outputs, enumNames);
  }
}
const enums = {};
for (const qualified of [...enumNames].sort()) enums[qualified] = resolveEnum(qualified);
files["enums.json"] = canonical(enums);
files["README.md"] =
  "# Contract artifacts (generated: do not edit)\n\n" +
  "Written by `scripts/export-artifacts.sh` from `contracts/src`; `scripts/test.sh` fails when they are stale.\n" +
  "`<Name>.abi.json` feeds `sol!`, `<Name>.bin` is the creation bytecode (library placeholders left in, their\n" +
  "positions in `<Name>.link.json`), `enums.json` names the variants of the enums the ABIs use.\n" +
  "See docs/design/bindings.md.\n";

fs.mkdirSync(outDir, { recursive: true });
let changed = 0;
for (const [file, content] of Object.entries(files)) {
  const p = path.join(outDir, file);
  if (fs.existsSync(p) && fs.readFileSync(p, "utf8") === content) continue;
  fs.writeFileSync(p, content);
  changed++;
}
for (const file of fs.readdirSync(outDir)) {
  if (!(file in files)) {
    fs.rmSync(path.join(outDir, file), { recursive: true });
    changed++;
  }
}
console.error(`export-artifacts: ${Object.keys(files).length} files in ${path.relative(process.cwd(), outDir) || outDir}, ${changed} changed`);
