#!/usr/bin/env python3
"""The library's public API, one item per line, from rustdoc's JSON output.

    RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="-Z unstable-options --output-format json" \
        cargo doc --lib --no-deps --target-dir target/api
    python3 .ci/public-api.py target/api/doc/ledger.json > .ci/public-api.txt

CI regenerates the listing and fails when it differs from the committed `.ci/public-api.txt`:
a change to a public signature, a removed item or a new one shows in the diff of the same commit,
and a reviewer sees it. Why a committed listing and not `cargo semver-checks`: the crate has no
published or tagged baseline to compare against yet, and a listing also records additions; the
listing reads the stable-toolchain rustdoc's JSON (unstable output, allowed by RUSTC_BOOTSTRAP,
pinned by `format_version` below), so it needs nothing installed.

`--self-test` checks that the listing sees what it claims: a function's argument types, a struct's
public fields, an enum's variants, a deprecation and `#[non_exhaustive]`.
"""

import json
import sys

FORMAT_VERSIONS = {57}


class Api:
    def __init__(self, doc):
        if doc["format_version"] not in FORMAT_VERSIONS:
            raise SystemExit(
                f"rustdoc JSON format {doc['format_version']}: this script reads "
                f"{sorted(FORMAT_VERSIONS)}; update it with the toolchain"
            )
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.root = str(doc["root"])
        self.lines = set()
        # id -> the first public path an item is listed under (filled by a first walk).
        self.public = {}

    # --- types -----------------------------------------------------------------------------

    def path_of(self, path):
        """The item's canonical path (where it is defined), whatever name the source used for
        it, so that an import written differently changes nothing; its last segment when
        rustdoc does not know the item."""
        public = self.public.get(str(path.get("id")))
        found = self.paths.get(str(path.get("id")))
        # This crate's item by the path users name it by (not the private module that defines
        # it, so that moving it between private modules changes nothing); another crate's by
        # its canonical path; unknown, by its last segment, however the source imported it.
        if public:
            name = public
        elif found:
            name = "::".join(found["path"])
        else:
            name = path["path"].rsplit("::", 1)[-1]
        return name + self.args(path.get("args"))

    def args(self, args):
        if not args:
            return ""
        if "angle_bracketed" in args:
            ab = args["angle_bracketed"]
            parts = []
            for a in ab["args"]:
                if "type" in a:
                    parts.append(self.ty(a["type"]))
                elif "lifetime" in a:
                    parts.append(a["lifetime"])
                elif "const" in a:
                    parts.append(a["const"].get("expr", "_"))
                else:
                    parts.append("_")
            for c in ab.get("constraints", []):
                binding = c["binding"]
                if "equality" in binding:
                    eq = binding["equality"]
                    value = self.ty(eq["type"]) if "type" in eq else str(eq)
                    parts.append(f"{c['name']} = {value}")
                else:
                    parts.append(f"{c['name']}: {self.bounds(binding['constraint'])}")
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in args:
            p = args["parenthesized"]
            out = "(" + ", ".join(self.ty(t) for t in p["inputs"]) + ")"
            if p.get("output"):
                out += " -> " + self.ty(p["output"])
            return out
        return "<..>"

    def bounds(self, bounds):
        out = []
        for b in bounds:
            if "trait_bound" in b:
                tb = b["trait_bound"]
                prefix = "?" if tb.get("modifier") == "maybe" else ""
                hrtb = ""
                if tb.get("generic_params"):
                    hrtb = "for<" + ", ".join(g["name"] for g in tb["generic_params"]) + "> "
                out.append(hrtb + prefix + self.path_of(tb["trait"]))
            elif "outlives" in b:
                out.append(b["outlives"])
            elif "use" in b:
                out.append("use<" + ", ".join(self.use_arg(u) for u in b["use"]) + ">")
        return " + ".join(out)

    @staticmethod
    def use_arg(u):
        if isinstance(u, dict):
            return next(iter(u.values()))
        return str(u)

    def ty(self, t):
        if t is None:
            return "()"
        (kind, v), = t.items()
        if kind == "resolved_path":
            return self.path_of(v)
        if kind == "generic":
            return v
        if kind == "primitive":
            return v
        if kind == "borrowed_ref":
            lt = (v["lifetime"] + " ") if v.get("lifetime") else ""
            mut = "mut " if v["is_mutable"] else ""
            inner = self.ty(v["type"])
            if "dyn_trait" in v["type"] and " + " in inner:
                inner = f"({inner})"
            return f"&{lt}{mut}{inner}"
        if kind == "raw_pointer":
            return ("*mut " if v["is_mutable"] else "*const ") + self.ty(v["type"])
        if kind == "slice":
            return f"[{self.ty(v)}]"
        if kind == "array":
            return f"[{self.ty(v['type'])}; {v['len']}]"
        if kind == "tuple":
            return "(" + ", ".join(self.ty(x) for x in v) + ("," if len(v) == 1 else "") + ")"
        if kind == "impl_trait":
            return "impl " + self.bounds(v)
        if kind == "dyn_trait":
            traits = []
            for p in v["traits"]:
                traits.append(self.path_of(p["trait"]))
            if v.get("lifetime"):
                traits.append(v["lifetime"])
            return "dyn " + " + ".join(traits)
        if kind == "qualified_path":
            trait = self.path_of(v["trait"]) if v.get("trait") else "_"
            return f"<{self.ty(v['self_type'])} as {trait}>::{v['name']}{self.args(v.get('args'))}"
        if kind == "function_pointer":
            sig = v["sig"]
            ins = ", ".join(self.ty(i[1]) for i in sig["inputs"])
            out = f" -> {self.ty(sig['output'])}" if sig.get("output") else ""
            return f"fn({ins}){out}"
        if kind == "infer":
            return "_"
        if kind == "pat":
            return self.ty(v["type"])
        return f"<{kind}>"

    def generics(self, g):
        params = []
        for p in g["params"]:
            k = p["kind"]
            if "lifetime" in k:
                outlives = k["lifetime"].get("outlives") or []
                params.append(p["name"] + (": " + " + ".join(outlives) if outlives else ""))
            elif "type" in k:
                if k["type"].get("is_synthetic"):
                    continue
                b = self.bounds(k["type"]["bounds"])
                d = k["type"].get("default")
                params.append(p["name"] + (f": {b}" if b else "") + (f" = {self.ty(d)}" if d else ""))
            elif "const" in k:
                params.append(f"const {p['name']}: {self.ty(k['const']['type'])}")
        head = "<" + ", ".join(params) + ">" if params else ""
        preds = []
        for w in g["where_predicates"]:
            if "bound_predicate" in w:
                bp = w["bound_predicate"]
                preds.append(f"{self.ty(bp['type'])}: {self.bounds(bp['bounds'])}")
            elif "lifetime_predicate" in w:
                lp = w["lifetime_predicate"]
                preds.append(f"{lp['lifetime']}: {' + '.join(lp['outlives'])}")
            elif "eq_predicate" in w:
                ep = w["eq_predicate"]
                preds.append(f"{self.ty(ep['lhs'])} = {self.ty(ep['rhs'].get('type'))}")
        where = " where " + ", ".join(preds) if preds else ""
        return head, where

    # --- items -----------------------------------------------------------------------------

    def marks(self, item):
        out = []
        if item.get("deprecation") is not None:
            note = item["deprecation"].get("note") or ""
            out.append(f"#[deprecated({note})] ")
        attrs = item.get("attrs") or []
        if any("non_exhaustive" in json.dumps(a) for a in attrs):
            out.append("#[non_exhaustive] ")
        return "".join(out)

    def signature(self, name, f):
        h = f["header"]
        quals = ("const " if h["is_const"] else "") + ("async " if h["is_async"] else "") + (
            "unsafe " if h["is_unsafe"] else ""
        )
        head, where = self.generics(f["generics"])
        ins = []
        for arg_name, t in f["sig"]["inputs"]:
            if arg_name == "self":
                rendered = self.ty(t)
                ins.append({"Self": "self", "&Self": "&self", "&mut Self": "&mut self"}.get(rendered, f"self: {rendered}"))
            else:
                ins.append(f"{arg_name}: {self.ty(t)}")
        out = f" -> {self.ty(f['sig']['output'])}" if f["sig"].get("output") else ""
        return f"{quals}fn {name}{head}({', '.join(ins)}){out}{where}"

    def add(self, line):
        self.lines.add(line)

    def item(self, id_, path, seen):
        item = self.index.get(str(id_))
        if item is not None:
            self.item_as(id_, path, item.get("name"), seen)

    def item_as(self, id_, path, name, seen):
        item = self.index.get(str(id_))
        if item is None or str(id_) in seen:
            return
        seen = seen | {str(id_)}
        (kind, inner), = item["inner"].items()
        if kind != "use":
            candidate = f"{path}::{name}" if name else path
            known = self.public.get(str(id_))
            # The shortest public path wins (`ledger::Error` over `ledger::error::Error`).
            if known is None or (len(candidate), candidate) < (len(known), known):
                self.public[str(id_)] = candidate
        full = f"{path}::{name}" if name else path
        m = self.marks(item)
        if kind == "module":
            self.add(f"{m}mod {full}")
            for child in inner["items"]:
                self.item(child, full, seen)
        elif kind == "use":
            target = inner.get("id")
            local = self.paths.get(str(target)) if target is not None else None
            if inner.get("is_glob"):
                module = self.index.get(str(target)) if target is not None else None
                if module is not None and "module" in module["inner"]:
                    # `pub use private_module::*`: its items, under this module's path.
                    for child in module["inner"]["module"]["items"]:
                        self.item(child, path, seen)
                else:
                    self.add(f"{m}use {path}::{inner['source']}::*")
            elif local and local["crate_id"] == 0 and str(target) in self.index:
                # A re-export of this crate's item (often from a private module): the item
                # itself, under the public name.
                self.item_as(target, path, inner["name"], seen)
            else:
                self.add(f"{m}use {path}::{inner['name']} = {inner['source']}")
        elif kind == "function":
            self.add(f"{m}{self.signature(full, inner)}")
        elif kind == "struct":
            head, where = self.generics(inner["generics"])
            sk = inner["kind"]
            if "plain" in sk:
                fields = sk["plain"]["fields"]
                hidden = " (and private fields)" if sk["plain"]["has_stripped_fields"] else ""
                self.add(f"{m}struct {full}{head}{where}{hidden}")
                for fid in fields:
                    f = self.index[str(fid)]
                    self.add(f"{self.marks(f)}field {full}.{f['name']}: {self.ty(f['inner']['struct_field'])}")
            elif "tuple" in sk:
                parts = []
                for fid in sk["tuple"]:
                    parts.append("_" if fid is None else self.ty(self.index[str(fid)]["inner"]["struct_field"]))
                self.add(f"{m}struct {full}{head}({', '.join(parts)}){where}")
            else:
                self.add(f"{m}struct {full}{head}{where}")
            self.impls(full, inner["impls"], seen)
        elif kind == "enum":
            head, where = self.generics(inner["generics"])
            self.add(f"{m}enum {full}{head}{where}")
            for vid in inner["variants"]:
                v = self.index[str(vid)]
                vk = v["inner"]["variant"]["kind"]
                if vk == "plain":
                    shape = ""
                elif "tuple" in vk:
                    shape = "(" + ", ".join(
                        "_" if fid is None else self.ty(self.index[str(fid)]["inner"]["struct_field"])
                        for fid in vk["tuple"]
                    ) + ")"
                else:
                    fs = []
                    for fid in vk["struct"]["fields"]:
                        f = self.index[str(fid)]
                        fs.append(f"{f['name']}: {self.ty(f['inner']['struct_field'])}")
                    shape = " { " + ", ".join(fs) + " }"
                self.add(f"{self.marks(v)}variant {full}::{v['name']}{shape}")
            self.impls(full, inner["impls"], seen)
        elif kind == "trait":
            head, where = self.generics(inner["generics"])
            self.add(f"{m}trait {full}{head}{where}")
            for tid in inner["items"]:
                t = self.index[str(tid)]
                (tk, ti), = t["inner"].items()
                if tk == "function":
                    self.add(f"{self.marks(t)}{self.signature(full + '::' + t['name'], ti)}")
                else:
                    self.add(f"trait-{tk} {full}::{t['name']}")
        elif kind == "type_alias":
            head, where = self.generics(inner["generics"])
            self.add(f"{m}type {full}{head} = {self.ty(inner['type'])}{where}")
        elif kind == "constant":
            self.add(f"{m}const {full}: {self.ty(inner['type'])} = {inner['const'].get('expr')}")
        elif kind == "static":
            self.add(f"{m}static {full}: {self.ty(inner['type'])}")
        elif kind == "macro":
            self.add(f"{m}macro {full}!")
        else:
            self.add(f"{m}{kind} {full}")

    def impls(self, owner, impl_ids, seen):
        for iid in impl_ids:
            imp = self.index[str(iid)]["inner"]["impl"]
            if imp.get("is_synthetic") or imp.get("blanket_impl") is not None:
                continue
            head, where = self.generics(imp["generics"])
            if imp.get("trait"):
                neg = "!" if imp.get("is_negative") else ""
                self.add(f"impl{head} {neg}{self.path_of(imp['trait'])} for {self.ty(imp['for'])}{where}")
                continue
            for mid in imp["items"]:
                mi = self.index[str(mid)]
                if mi.get("visibility") != "public":
                    continue
                (mk, minner), = mi["inner"].items()
                if mk == "function":
                    self.add(f"{self.marks(mi)}{self.signature(owner + '::' + mi['name'], minner)}{where}")
                elif mk == "constant":
                    self.add(f"{self.marks(mi)}assoc-const {owner}::{mi['name']}: {self.ty(minner['type'])}")
                else:
                    self.add(f"assoc-{mk} {owner}::{mi['name']}")

    def listing(self):
        root = self.index[self.root]
        # Twice: the first walk learns every item's public path, the second renders with it.
        for _ in range(2):
            self.lines = set()
            for child in root["inner"]["module"]["items"]:
                self.item(child, root["name"], {self.root})
        return sorted(self.lines)


def self_test():
    """A tiny hand-made rustdoc index: the listing must show each thing it claims to see."""
    doc = {
        "format_version": 57,
        "root": 0,
        "paths": {
            "3": {"crate_id": 0, "path": ["c", "Thing"], "kind": "struct"},
            "9": {"crate_id": 1, "path": ["core", "option", "Option"], "kind": "enum"},
        },
        "index": {
            "0": {"name": "c", "inner": {"module": {"items": [1, 3, 6]}}},
            "1": {
                "name": "go",
                "deprecation": {"since": None, "note": "use `go_with`"},
                "inner": {
                    "function": {
                        "sig": {
                            "inputs": [
                                ["n", {"primitive": "i64"}],
                                ["t", {"borrowed_ref": {"lifetime": None, "is_mutable": True,
                                                         "type": {"resolved_path": {"path": "Thing", "id": 3, "args": None}}}}],
                            ],
                            "output": {"resolved_path": {"path": "Option", "id": 9, "args": {"angle_bracketed": {"args": [{"type": {"primitive": "u8"}}], "constraints": []}}}},
                        },
                        "generics": {"params": [], "where_predicates": []},
                        "header": {"is_const": False, "is_unsafe": False, "is_async": True},
                    }
                },
            },
            "3": {
                "name": "Thing",
                "attrs": ["non_exhaustive"],
                "inner": {"struct": {"kind": {"plain": {"fields": [4], "has_stripped_fields": True}},
                                     "generics": {"params": [], "where_predicates": []}, "impls": []}},
            },
            "4": {"name": "size", "inner": {"struct_field": {"primitive": "u32"}}},
            "6": {
                "name": "Kind",
                "inner": {"enum": {"variants": [7], "generics": {"params": [], "where_predicates": []}, "impls": []}},
            },
            "7": {"name": "Big", "inner": {"variant": {"kind": {"tuple": [8]}}}},
            "8": {"name": "0", "inner": {"struct_field": {"primitive": "u64"}}},
        },
    }
    got = Api(doc).listing()
    want = [
        "#[deprecated(use `go_with`)] async fn c::go(n: i64, t: &mut c::Thing) -> core::option::Option<u8>",
        "#[non_exhaustive] struct c::Thing (and private fields)",
        "enum c::Kind",
        "field c::Thing.size: u32",
        "variant c::Kind::Big(u64)",
    ]
    if sorted(want) != got:
        raise SystemExit("self-test failed:\n  want " + "\n       ".join(sorted(want)) + "\n  got  " + "\n       ".join(got))
    print("public-api self-test: ok")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    print("\n".join(Api(doc).listing()))


if __name__ == "__main__":
    main()
