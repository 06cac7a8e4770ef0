package consensus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

const schemaPath = "../docs/certificate.schema.json"

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("schema: %v", err)
	}
	return s
}

// schemaValidator checks a JSON value against the subset of JSON Schema
// draft 2020-12 that docs/certificate.schema.json uses. A keyword outside
// that subset is an error, so the schema cannot rely on a keyword this
// check would silently skip.
type schemaValidator struct{ root map[string]any }

var annotations = map[string]bool{"$schema": true, "$id": true, "title": true, "description": true, "$defs": true, "format": true}

func (v schemaValidator) validate(schema map[string]any, x any, path string) error {
	for key, kw := range schema {
		if annotations[key] {
			continue
		}
		var err error
		switch key {
		case "$ref":
			ref := kw.(string)
			name, ok := strings.CutPrefix(ref, "#/$defs/")
			if !ok {
				return fmt.Errorf("%s: unsupported $ref %q", path, ref)
			}
			def, ok := v.root["$defs"].(map[string]any)[name].(map[string]any)
			if !ok {
				return fmt.Errorf("%s: unknown $ref %q", path, ref)
			}
			err = v.validate(def, x, path)
		case "type":
			err = checkType(kw.(string), x, path)
		case "const":
			if !jsonEqual(kw, x) {
				err = fmt.Errorf("%s: %v is not %v", path, x, kw)
			}
		case "enum":
			if !slices.ContainsFunc(kw.([]any), func(e any) bool { return jsonEqual(e, x) }) {
				err = fmt.Errorf("%s: %v not in %v", path, x, kw)
			}
		case "pattern":
			s, ok := x.(string)
			if ok && !regexp.MustCompile(kw.(string)).MatchString(s) {
				err = fmt.Errorf("%s: %q does not match %s", path, s, kw)
			}
		case "minimum", "maximum":
			n, ok := x.(json.Number)
			if !ok {
				break
			}
			a, b := new(big.Float), new(big.Float)
			a.SetString(n.String())
			b.SetString(kw.(json.Number).String())
			if c := a.Cmp(b); (key == "minimum" && c < 0) || (key == "maximum" && c > 0) {
				err = fmt.Errorf("%s: %s violates %s %s", path, n, key, kw)
			}
		case "minItems", "maxItems":
			arr, ok := x.([]any)
			lim, _ := kw.(json.Number).Int64()
			if ok && ((key == "minItems" && int64(len(arr)) < lim) || (key == "maxItems" && int64(len(arr)) > lim)) {
				err = fmt.Errorf("%s: %d items violates %s %d", path, len(arr), key, lim)
			}
		case "items":
			if arr, ok := x.([]any); ok {
				for i, e := range arr {
					if err = v.validate(kw.(map[string]any), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
						break
					}
				}
			}
		case "required":
			if obj, ok := x.(map[string]any); ok {
				for _, r := range kw.([]any) {
					if _, ok := obj[r.(string)]; !ok {
						err = fmt.Errorf("%s: missing %q", path, r)
						break
					}
				}
			}
		case "properties":
			if obj, ok := x.(map[string]any); ok {
				for name, sub := range kw.(map[string]any) {
					if val, ok := obj[name]; ok {
						if err = v.validate(sub.(map[string]any), val, path+"."+name); err != nil {
							break
						}
					}
				}
			}
		case "additionalProperties":
			if kw != false {
				return fmt.Errorf("%s: only additionalProperties false is supported", path)
			}
			if obj, ok := x.(map[string]any); ok {
				props, _ := schema["properties"].(map[string]any)
				for name := range obj {
					if _, ok := props[name]; !ok {
						err = fmt.Errorf("%s: unexpected property %q", path, name)
						break
					}
				}
			}
		case "oneOf":
			matched := 0
			for _, sub := range kw.([]any) {
				if v.validate(sub.(map[string]any), x, path) == nil {
					matched++
				}
			}
			if matched != 1 {
				err = fmt.Errorf("%s: matches %d of the oneOf schemas", path, matched)
			}
		default:
			return fmt.Errorf("%s: keyword %q is not supported by this check", path, key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkType(typ string, x any, path string) error {
	ok := false
	switch typ {
	case "object":
		_, ok = x.(map[string]any)
	case "array":
		_, ok = x.([]any)
	case "string":
		_, ok = x.(string)
	case "integer":
		n, isNum := x.(json.Number)
		ok = isNum && !strings.ContainsAny(n.String(), ".eE")
	default:
		return fmt.Errorf("%s: type %q is not supported by this check", path, typ)
	}
	if !ok {
		return fmt.Errorf("%s: %v is not of type %s", path, x, typ)
	}
	return nil
}

func jsonEqual(a, b any) bool {
	if na, ok := a.(json.Number); ok {
		nb, ok := b.(json.Number)
		return ok && na.String() == nb.String()
	}
	return reflect.DeepEqual(a, b)
}

func decodeJSONValue(t *testing.T, data []byte) any {
	t.Helper()
	var x any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		t.Fatal(err)
	}
	return x
}

// TestSchemaAcceptsVectors checks every certificate of testdata/certs against
// docs/certificate.schema.json (the invalid ones are well-formed: they fail
// verification, not the schema), and that malformed variants fail it.
func TestSchemaAcceptsVectors(t *testing.T) {
	v := schemaValidator{root: loadSchema(t)}
	files, _ := filepath.Glob(filepath.Join(certsDir, "*.json"))
	more, _ := filepath.Glob(filepath.Join(certsDir, "invalid", "*.json"))
	n := 0
	for _, p := range append(files, more...) {
		if b := filepath.Base(p); b == "genesis.json" || b == "cases.json" || b == "duplicate-key.json" || b == "case-variant-key.json" {
			continue // not certificates, or malformed JSON that the decoder refuses (stage "parse")
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.validate(v.root, decodeJSONValue(t, data), "$"); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		n++
	}
	if n < 3 {
		t.Fatalf("only %d certificates checked", n)
	}

	valid, err := os.ReadFile(filepath.Join(certsDir, "valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(c map[string]any)
	}{
		{"missing field", func(c map[string]any) { delete(c, "job_nonce") }},
		{"extra field", func(c map[string]any) { c["extra"] = "x" }},
		{"short hash", func(c map[string]any) { c["job_id"] = "0x1234" }},
		{"provisional status", func(c map[string]any) { c["status"] = "provisional" }},
		{"version 2", func(c map[string]any) { c["version"] = json.Number("2") }},
		{"network id zero", func(c map[string]any) { c["network_id"] = json.Number("0") }},
		{"fractional replication", func(c map[string]any) { c["replication"] = json.Number("1.5") }},
		{"no claims", func(c map[string]any) { c["claims"] = []any{} }},
		{"pending verdict", func(c map[string]any) {
			c["claims"].([]any)[0].(map[string]any)["verdict"] = "pending"
		}},
		{"stake above uint64", func(c map[string]any) {
			c["claims"].([]any)[0].(map[string]any)["stake_for"] = json.Number("18446744073709551616")
		}},
		{"verdict code 3", func(c map[string]any) {
			c["ballots"].([]any)[0].(map[string]any)["verdicts"].([]any)[0] = json.Number("3")
		}},
		{"short signature", func(c map[string]any) {
			c["ballots"].([]any)[0].(map[string]any)["signature"] = "0x00"
		}},
		{"quorum with both forms", func(c map[string]any) { c["quorum"].(map[string]any)["n"] = json.Number("3") }},
		{"quorum of unknown kind", func(c map[string]any) { c["quorum"].(map[string]any)["kind"] = "weight" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodeJSONValue(t, valid).(map[string]any)
			tt.mutate(c)
			if err := v.validate(v.root, c, "$"); err == nil {
				t.Fatal("schema accepts it")
			}
		})
	}
}

// jsonFields are the JSON names of t's fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if f.Anonymous {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "-" && name != "" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// omitempty lists the JSON fields of t that may be absent.
func omitempty(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if strings.Contains(opts, "omitempty") {
			out = append(out, name)
		}
	}
	return out
}

func schemaKeys(t *testing.T, obj map[string]any, key string) []string {
	t.Helper()
	var out []string
	switch x := obj[key].(type) {
	case map[string]any:
		for k := range x {
			out = append(out, k)
		}
	case []any:
		for _, k := range x {
			out = append(out, k.(string))
		}
	default:
		t.Fatalf("schema object has no %s", key)
	}
	sort.Strings(out)
	return out
}

// TestSchemaMatchesStructs keeps the schema in step with the Go types: the
// properties (and, where every field is always present, the required list)
// of each object are exactly the JSON fields of its struct.
func TestSchemaMatchesStructs(t *testing.T) {
	s := loadSchema(t)
	defs := s["$defs"].(map[string]any)
	quorum := defs["quorum"].(map[string]any)["oneOf"].([]any)
	tests := []struct {
		name     string
		obj      map[string]any
		typ      reflect.Type
		required bool
	}{
		{"certificate", s, reflect.TypeFor[Certificate](), true},
		{"claim", defs["claim"].(map[string]any), reflect.TypeFor[CertClaim](), true},
		{"ballot", defs["ballot"].(map[string]any), reflect.TypeFor[Vote](), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := jsonFields(tt.typ)
			if got := schemaKeys(t, tt.obj, "properties"); !slices.Equal(got, want) {
				t.Fatalf("schema properties %v, struct fields %v", got, want)
			}
			want = slices.DeleteFunc(want, func(f string) bool { return slices.Contains(omitempty(tt.typ), f) })
			if got := schemaKeys(t, tt.obj, "required"); tt.required && !slices.Equal(got, want) {
				t.Fatalf("schema required %v, struct fields always present %v", got, want)
			}
		})
	}
	t.Run("quorum", func(t *testing.T) {
		var union []string
		for _, q := range quorum {
			union = append(union, schemaKeys(t, q.(map[string]any), "properties")...)
		}
		sort.Strings(union)
		union = slices.Compact(union)
		if want := jsonFields(reflect.TypeFor[Quorum]()); !slices.Equal(union, want) {
			t.Fatalf("schema quorum properties %v, struct fields %v", union, want)
		}
	})
	t.Run("certificate version", func(t *testing.T) {
		c := s["properties"].(map[string]any)["version"].(map[string]any)["const"]
		if c.(json.Number).String() != fmt.Sprint(CertificateVersion) {
			t.Fatalf("schema version %v, package writes %d", c, CertificateVersion)
		}
	})
	t.Run("limits", func(t *testing.T) {
		claims := s["properties"].(map[string]any)["claims"].(map[string]any)
		ballots := s["properties"].(map[string]any)["ballots"].(map[string]any)
		if claims["maxItems"].(json.Number).String() != fmt.Sprint(MaxClaims) || ballots["maxItems"].(json.Number).String() != fmt.Sprint(MaxValidators) {
			t.Fatal("schema limits differ from MaxClaims / MaxValidators")
		}
	})
}
