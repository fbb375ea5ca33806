"""The JSON schemas every constrained output is checked against (with jsonschema)."""

from __future__ import annotations

_NAME = {"type": "string", "maxLength": 24}
_DATE = {"type": "string", "format": "date"}

SCHEMAS: dict[str, dict] = {
    "flat_object": {"type": "object", "properties": {"name": _NAME, "age": {"type": "integer"}},
                    "required": ["name", "age"]},
    "nested_object": {"type": "object", "properties": {
        "user": {"type": "object", "properties": {"id": {"type": "integer"}, "name": _NAME},
                 "required": ["id", "name"]},
        "active": {"type": "boolean"}}, "required": ["user", "active"]},
    "three_levels": {"type": "object", "properties": {"a": {"type": "object", "properties": {
        "b": {"type": "object", "properties": {"c": {"type": "integer"}}, "required": ["c"]}},
        "required": ["b"]}}, "required": ["a"]},
    "array_min_max": {"type": "array", "items": {"type": "integer"}, "minItems": 2,
                      "maxItems": 4},
    "array_of_objects": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
        "type": "object", "properties": {"sku": _NAME, "qty": {"type": "integer", "minimum": 1,
                                                                "maximum": 99}},
        "required": ["sku", "qty"]}},
    "string_enum": {"type": "string", "enum": ["red", "green", "blue"]},
    "mixed_enum": {"enum": ["auto", 3, None, True]},
    "const": {"type": "object", "properties": {"version": {"const": 2}, "kind": {
        "const": "order"}}, "required": ["version", "kind"]},
    "pattern": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
    "date": _DATE,
    "date_time": {"type": "string", "format": "date-time"},
    "email": {"type": "string", "format": "email", "maxLength": 40},
    "uuid": {"type": "string", "format": "uuid"},
    "integer_bounds": {"type": "integer", "minimum": -5, "maximum": 17},
    "exclusive_bounds": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "number": {"type": "object", "properties": {"price": {"type": "number"}, "tax": {
        "type": "number", "minimum": 0}}, "required": ["price", "tax"]},
    "any_of": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 10}]},
    "one_of_objects": {"oneOf": [
        {"type": "object", "properties": {"circle": {"type": "number"}}, "required": ["circle"],
         "additionalProperties": False},
        {"type": "object", "properties": {"square": {"type": "number"}}, "required": ["square"],
         "additionalProperties": False}]},
    "optional_properties": {"type": "object", "properties": {
        "title": _NAME, "subtitle": _NAME, "pages": {"type": "integer"}}, "required": ["title"]},
    "no_additional": {"type": "object", "properties": {"x": {"type": "integer"}},
                      "required": ["x"], "additionalProperties": False},
    "local_ref": {"$defs": {"point": {"type": "object", "properties": {
        "x": {"type": "integer"}, "y": {"type": "integer"}}, "required": ["x", "y"]}},
        "type": "object", "properties": {"start": {"$ref": "#/$defs/point"},
                                         "end": {"$ref": "#/$defs/point"}},
        "required": ["start", "end"]},
    "definitions_ref": {"definitions": {"tag": {"type": "string", "enum": ["a", "b"]}},
                        "type": "array", "items": {"$ref": "#/definitions/tag"},
                        "maxItems": 3},
    "string_length": {"type": "string", "minLength": 3, "maxLength": 8},
    "nullable": {"type": "object", "properties": {"note": {"type": ["string", "null"],
                                                           "maxLength": 20}},
                 "required": ["note"]},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
    "tuple_prefix_items": {"type": "array", "prefixItems": [{"type": "string", "maxLength": 8},
                                                            {"type": "integer"}],
                           "items": False},
    "multiple_of": {"type": "integer", "multipleOf": 5, "minimum": 0, "maximum": 100},
    "all_of": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}},
                          "required": ["a"]},
                         {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]},
    "order_extraction": {"type": "object", "properties": {
        "customer": _NAME, "date": _DATE,
        "items": {"type": "array", "minItems": 1, "maxItems": 2, "items": {
            "type": "object", "properties": {"product": _NAME, "quantity": {
                "type": "integer", "minimum": 1}}, "required": ["product", "quantity"]}},
        "priority": {"enum": ["low", "normal", "high"]}},
        "required": ["customer", "items", "priority"]},
    "string_array_unique_len": {"type": "array", "items": {"type": "string", "maxLength": 6},
                                "minItems": 1, "maxItems": 3},
    "ipv4": {"type": "string", "format": "ipv4"},
}
