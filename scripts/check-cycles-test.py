#!/usr/bin/env python3
"""Test of scripts/check-cycles on two fake crates made in a temporary workspace: one without a
cycle (that only looks like one in comments, strings, tests and parent/child uses), one with a
cycle through a re-export, a `use` group, a `#[path]` module and a path expression.
Run: python3 scripts/check-cycles-test.py"""

import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-cycles")

CLEAN = {
    "src/lib.rs": "pub mod a;\npub mod b;\npub mod c;\npub use a::Thing;\n",
    # A parent using what it contains and the child using its parent: ownership, no cycle.
    "src/c/mod.rs": "mod d;\npub use d::D;\npub struct C;\n",
    "src/c/d.rs": "use super::C;\npub struct D(pub C);\n",
    # a -> b only; b names `crate::a` only in a comment, a string and its test module.
    "src/a.rs": "use crate::b::{self, Other};\npub struct Thing(pub b::Other);\n",
    "src/b.rs": (
        "// crate::a::Thing would make a cycle\n"
        "pub struct Other;\n"
        "pub const NOTE: &str = \"crate::a::Thing\";\n"
        "pub mod inner {\n    pub fn f() -> super::Other { super::Other }\n}\n"
        "#[cfg(test)]\nmod tests {\n    use crate::a::Thing;\n    #[test]\n    fn t() { let _ = Thing(super::Other); }\n}\n"
    ),
}

TANGLED = {
    "src/lib.rs": "mod config;\nmod egress;\n#[path = \"weird/place.rs\"]\nmod runtime;\n",
    # config -> egress (through egress's re-export of plain::Rule) ...
    "src/config.rs": "use crate::{egress::{self, Rule}, runtime as rt};\npub struct Limit;\n",
    "src/egress/mod.rs": "mod plain;\npub use plain::Rule;\npub fn go() { plain::run() }\n",
    # ... and egress::plain -> config by a path expression in code.
    "src/egress/plain.rs": (
        "pub struct Rule;\n"
        "pub fn run() {\n"
        "    let _limit = super::super::config::Limit;\n"
        "}\n"
    ),
    "src/weird/place.rs": "pub fn tick() { crate::egress::go() }\n",
}


def write_crate(root, name, files):
    os.makedirs(os.path.join(root, name))
    with open(os.path.join(root, name, "Cargo.toml"), "w") as f:
        f.write(f'[package]\nname = "{name}"\nversion = "0.1.0"\n')
    for path, text in files.items():
        full = os.path.join(root, name, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)


def run(members, crates, *flags):
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "Cargo.toml"), "w") as f:
            f.write("[workspace]\nmembers = [" + ", ".join(f'"{m}"' for m in members) + "]\n")
        for name in members:
            write_crate(root, name, crates[name])
        p = subprocess.run([sys.executable, SCRIPT, *flags, root], capture_output=True, text=True,
                           timeout=60)
        return p.returncode, p.stdout + p.stderr


class CheckCycles(unittest.TestCase):
    def test_clean_crate_passes(self):
        code, out = run(["clean"], {"clean": CLEAN})
        self.assertEqual(code, 0, out)
        self.assertIn("clean (clean): 5 files, no cycle", out)

    def test_cycle_is_found_with_an_edge_per_hop(self):
        code, out = run(["clean", "tangled"], {"clean": CLEAN, "tangled": TANGLED})
        self.assertEqual(code, 1, out)
        self.assertIn("clean (clean): 5 files, no cycle", out)
        self.assertIn("tangled (tangled): 5 files, 2 cycle(s)", out)
        # File modules: config -> egress::plain (re-export followed) -> config.
        self.assertIn("cycle among file modules: config -> egress::plain -> config", out)
        self.assertIn("config -> egress::plain   (src/config.rs:1)", out)
        self.assertIn("egress::plain -> config   (src/egress/plain.rs:3)", out)
        # Top-level modules: the same cycle, and runtime (a #[path] file) outside it.
        self.assertIn("cycle among top-level modules: config -> egress -> config", out)
        self.assertIn("config -> runtime   (src/config.rs:1)", out)
        self.assertIn("runtime -> egress   (src/weird/place.rs:1)", out)
        self.assertIn("2 import cycle(s) in 2 crates", out)

    def test_tests_flag_counts_cfg_test_modules(self):
        code, out = run(["clean"], {"clean": CLEAN}, "--tests")
        self.assertEqual(code, 1, out)
        self.assertIn("cycle among file modules: a -> b -> a", out)
        self.assertIn("b -> a   (src/b.rs:9)", out)

if __name__ == "__main__":
    unittest.main()
