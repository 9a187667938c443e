#!/usr/bin/env python3
"""Vendors Nosey Parker's rules (YAML) as one TOML file ward loads as data.

Usage: python3 tools/vendor_noseyparker.py ../shared/testdata/noseyparker-rules \
           crates/ward-redact/rules/noseyparker/rules.toml

Keeps each rule's id, name and pattern unchanged (examples stay in the originals, which the
ward-redact tests read). Needs PyYAML.
"""
import glob
import os
import sys

import yaml


def toml_string(text):
    # TOML literal multi-line strings keep regexes byte for byte; none of the patterns holds '''.
    if "'''" in text:
        raise SystemExit("a pattern contains ''' and cannot be a literal string")
    return "'''\n" + text + "'''" if "\n" in text else "'''" + text + "'''"


def main(source, target):
    rules = []
    for path in sorted(glob.glob(os.path.join(source, "*.yml"))):
        with open(path, encoding="utf-8") as f:
            for rule in yaml.safe_load(f)["rules"]:
                rules.append(rule)
    with open(target, "w", encoding="utf-8") as out:
        out.write("# Nosey Parker's rules (praetorian-inc/noseyparker, Apache-2.0: LICENSE here),\n")
        out.write("# converted from YAML by tools/vendor_noseyparker.py. Do not edit by hand.\n")
        for rule in rules:
            out.write("\n[[rules]]\n")
            out.write(f"id = {toml_string(rule['id'])}\n")
            out.write(f"name = {toml_string(rule['name'])}\n")
            out.write(f"pattern = {toml_string(rule['pattern'])}\n")
    print(f"{len(rules)} rules written to {target}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
