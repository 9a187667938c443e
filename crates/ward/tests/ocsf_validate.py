"""Validates OCSF events (JSON Lines) against the OCSF 1.8.0 JSON schema, using validators we did
not write: the `ocsf-json-schema` package (the schema) and `jsonschema` (the validator).

    python3 ocsf_validate.py EVENTS.jsonl

Exit 0: every event valid; 1: some are not (each problem printed); 3: the validators are not
installed (pip install ocsf-json-schema jsonschema).
"""
import json
import sys

try:
    import jsonschema
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema
except ImportError as missing:
    print(f"validators not installed: {missing}")
    sys.exit(3)

schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version="1.8.0"))
validators = {}
count = failures = 0
with open(sys.argv[1], encoding="utf-8") as events:
    for number, line in enumerate(events, 1):
        if not line.strip():
            continue
        event = json.loads(line)
        count += 1
        uid = event["class_uid"]
        if uid not in validators:
            class_schema = schema.get_class_schema(schema.lookup_class_name_from_uid(uid))
            validators[uid] = jsonschema.validators.validator_for(class_schema)(class_schema)
        problems = [error.message for error in validators[uid].iter_errors(event)]
        if event["type_uid"] != event["class_uid"] * 100 + event["activity_id"]:
            problems.append("type_uid is not class_uid * 100 + activity_id")
        for problem in problems:
            print(f"line {number} ({event.get('metadata', {}).get('event_code')}): {problem}")
        failures += len(problems)
print(f"{count} events validated against OCSF 1.8.0, {failures} problems")
sys.exit(1 if failures or count == 0 else 0)
