package consensus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const schemaPath = "../docs/certificate.schema.json"

// loadSchema reads the schema as plain JSON, for the checks that compare
// it with the Go types.
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

// compileSchema compiles docs/certificate.schema.json with a JSON Schema
// 2020-12 validator, which first checks the schema against its
// metaschema. Formats (date-time) are asserted, not only annotated.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	sch, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return sch
}

// decodeInstance decodes JSON as the validator wants it (numbers as
// json.Number, so that no integer above 2^53 is rounded).
func decodeInstance(t *testing.T, data []byte) any {
	t.Helper()
	x, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// failedAt lists the JSON pointers of the values that err's innermost
// causes are about.
func failedAt(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, "/"+strings.Join(e.InstanceLocation, "/"))
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

// schemaBlind names the shape-invalid vectors that no JSON Schema can
// refuse, and why.
var schemaBlind = map[string]string{
	"duplicate-key": "a schema validates the decoded value, in which the repeated key is already gone",
}

// TestSchemaAcceptsVectors checks the certificates of testdata/certs against
// docs/certificate.schema.json: the valid ones and the invalid ones that
// parse (they are well-formed and fail verification) must pass it, the
// ones ParseCertificate refuses for their shape must fail it; and each
// malformed variant of valid.json must fail it at the value that was
// broken.
func TestSchemaAcceptsVectors(t *testing.T) {
	sch := compileSchema(t)
	read := func(name string) []byte {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(certsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, name := range []string{"valid.json", "verified.json", "batched.json"} {
		if err := sch.Validate(decodeInstance(t, read(name))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	var cases []vectorCase
	if err := json.Unmarshal(read("invalid/cases.json"), &cases); err != nil {
		t.Fatal(err)
	}
	accepted, refused := 0, 0
	for _, tc := range cases {
		err := sch.Validate(decodeInstance(t, read(tc.Certificate)))
		switch why, blind := schemaBlind[tc.Name]; {
		case tc.Stage != "parse" && err != nil:
			t.Errorf("%s (%s): well-formed, but the schema refuses it: %v", tc.Certificate, tc.Description, err)
		case tc.Stage == "parse" && blind:
			t.Logf("%s: malformed in a way no schema sees (%s)", tc.Certificate, why)
		case tc.Stage == "parse" && err == nil:
			t.Errorf("%s (%s): ParseCertificate refuses it for its shape, the schema accepts it", tc.Certificate, tc.Description)
		case tc.Stage == "parse":
			refused++
		default:
			accepted++
		}
	}
	if accepted < 10 || refused < 1 {
		t.Fatalf("%d well-formed invalid certificates accepted and %d malformed ones refused: too few vectors", accepted, refused)
	}

	valid := read("valid.json")
	claim0 := func(c map[string]any) map[string]any { return c["claims"].([]any)[0].(map[string]any) }
	ballot0 := func(c map[string]any) map[string]any { return c["ballots"].([]any)[0].(map[string]any) }
	tests := []struct {
		name   string
		at     string // the JSON pointer the schema must complain about
		mutate func(c map[string]any)
	}{
		{"missing field", "/", func(c map[string]any) { delete(c, "job_nonce") }},
		{"extra field", "/", func(c map[string]any) { c["extra"] = "x" }},
		{"short hash", "/job_id", func(c map[string]any) { c["job_id"] = "0x1234" }},
		{"hash without 0x", "/output_hash", func(c map[string]any) { c["output_hash"] = strings.Repeat("ab", 32) }},
		{"provisional status", "/status", func(c map[string]any) { c["status"] = "provisional" }},
		{"version 2", "/version", func(c map[string]any) { c["version"] = json.Number("2") }},
		{"network id zero", "/network_id", func(c map[string]any) { c["network_id"] = json.Number("0") }},
		{"network id a string", "/network_id", func(c map[string]any) { c["network_id"] = "1" }},
		{"fractional replication", "/replication", func(c map[string]any) { c["replication"] = json.Number("1.5") }},
		{"short gateway address", "/gateway", func(c map[string]any) { c["gateway"] = "0x1234" }},
		{"deadline zero", "/deadline_ms", func(c map[string]any) { c["deadline_ms"] = json.Number("0") }},
		{"issued_at not a time", "/issued_at", func(c map[string]any) { c["issued_at"] = "yesterday" }},
		{"short gateway signature", "/gateway_signature", func(c map[string]any) { c["gateway_signature"] = "0x00" }},
		{"no claims", "/claims", func(c map[string]any) { c["claims"] = []any{} }},
		{"pending verdict", "/claims/0/verdict", func(c map[string]any) { claim0(c)["verdict"] = "pending" }},
		{"negative claim index", "/claims/0/index", func(c map[string]any) { claim0(c)["index"] = json.Number("-1") }},
		{"stake above uint64", "/claims/0/stake_for", func(c map[string]any) {
			claim0(c)["stake_for"] = json.Number("18446744073709551616")
		}},
		{"verdict code 3", "/ballots/0/verdicts/0", func(c map[string]any) { ballot0(c)["verdicts"].([]any)[0] = json.Number("3") }},
		{"ballot without claims", "/ballots/0/claim_indexes", func(c map[string]any) { ballot0(c)["claim_indexes"] = []any{} }},
		{"short signature", "/ballots/0/signature", func(c map[string]any) { ballot0(c)["signature"] = "0x00" }},
		{"ballot without signature", "/ballots/0", func(c map[string]any) { delete(ballot0(c), "signature") }},
		{"quorum with both forms", "/quorum", func(c map[string]any) { c["quorum"].(map[string]any)["n"] = json.Number("3") }},
		{"quorum of unknown kind", "/quorum/kind", func(c map[string]any) { c["quorum"].(map[string]any)["kind"] = "weight" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodeInstance(t, valid).(map[string]any)
			tt.mutate(c)
			err := sch.Validate(c)
			if err == nil {
				t.Fatal("schema accepts it")
			}
			if at := failedAt(err); !slices.Contains(at, tt.at) {
				t.Fatalf("schema rejects it at %v, want %s: %v", at, tt.at, err)
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
