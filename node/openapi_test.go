package node_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
)

const openAPIPath = "../docs/openapi.json"

// documentedNotRouted lists operations docs/openapi.json describes before
// the router serves them. Keep it minimal: an entry that is routed, or no
// longer documented, fails the test so that it is removed.
var documentedNotRouted = map[string]string{}

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]openAPIParam `json:"parameters"`
	} `json:"components"`
}

type openAPIParam struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type openAPIOperation struct {
	Parameters []openAPIParam `json:"parameters"`
}

type openAPISchema struct {
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	data, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatalf("read %s: %v", openAPIPath, err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse %s: %v", openAPIPath, err)
	}
	if len(doc.Paths) == 0 {
		t.Fatalf("%s documents no paths", openAPIPath)
	}
	return &doc
}

// operations returns the documented operations as "METHOD /path".
func (d *openAPIDoc) operations(t *testing.T) map[string]openAPIOperation {
	t.Helper()
	ops := make(map[string]openAPIOperation)
	for path, item := range d.Paths {
		for key, raw := range item {
			if !slices.Contains(httpMethods, key) {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			ops[strings.ToUpper(key)+" "+path] = op
		}
	}
	return ops
}

type abstainVerifier struct{}

func (abstainVerifier) Verify(context.Context, claims.Claim) claims.Verdict { return claims.Abstain }

// newUnstartedNode builds a one-validator node; New only checks options,
// so nothing listens.
func newUnstartedNode(t *testing.T) *node.Node {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	g := &consensus.Genesis{NetworkID: 1, Validators: []consensus.Validator{
		{Name: "node0", Address: crypto.PubkeyToAddress(key.PublicKey), Stake: 1},
	}}
	n, err := node.New(node.Options{Key: key, Genesis: g, Verifier: abstainVerifier{}, DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	return n
}

// TestOpenAPIMatchesRoutes fails when the router serves a route that
// docs/openapi.json does not document, or the document describes an
// operation the router does not serve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := doc.operations(t)
	routed := make(map[string]bool)
	for _, r := range newUnstartedNode(t).Routes() {
		key := r.Method + " " + r.Path
		if routed[key] {
			t.Errorf("Routes lists %s twice", key)
		}
		routed[key] = true
	}
	if len(routed) == 0 {
		t.Fatal("Routes is empty")
	}

	for _, key := range sortedKeys(routed) {
		if _, ok := documented[key]; !ok {
			t.Errorf("route %s is not documented in %s", key, openAPIPath)
		}
		if _, ok := documentedNotRouted[key]; ok {
			t.Errorf("%s is routed now: remove it from documentedNotRouted", key)
		}
	}
	for _, key := range sortedKeys(documented) {
		if routed[key] {
			continue
		}
		if why, ok := documentedNotRouted[key]; ok {
			t.Logf("%s is documented but not routed yet (%s)", key, why)
			continue
		}
		t.Errorf("%s documents %s, which the router does not serve", openAPIPath, key)
	}
	for key := range documentedNotRouted {
		if _, ok := documented[key]; !ok {
			t.Errorf("documentedNotRouted lists %s, which %s does not document", key, openAPIPath)
		}
	}
}

// TestOpenAPIPathParameters checks that every {name} in a documented path
// has a required path parameter of that name, and no other path parameter
// is declared.
func TestOpenAPIPathParameters(t *testing.T) {
	doc := loadOpenAPI(t)
	for key, op := range doc.operations(t) {
		_, path, _ := strings.Cut(key, " ")
		var want []string
		for seg := range strings.SplitSeq(path, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				want = append(want, strings.TrimSuffix(name, "}"))
			}
		}
		var got []string
		for _, p := range op.Parameters {
			if p.Ref != "" {
				name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
				def, found := doc.Components.Parameters[name]
				if !ok || !found {
					t.Errorf("%s: parameter $ref %q does not resolve", key, p.Ref)
					continue
				}
				p = def
			}
			if p.In != "path" {
				continue
			}
			if !p.Required {
				t.Errorf("%s: path parameter %q is not required", key, p.Name)
			}
			got = append(got, p.Name)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: path parameters %v, the path has %v", key, got, want)
		}
	}
}

// TestOpenAPISchemasMatchTypes compares each documented schema with the
// JSON encoding of the Go type it describes: the same property names, and
// a property is required exactly when the field has neither omitempty nor
// omitzero. The certificate is described by docs/certificate.schema.json,
// which openapi.json references.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	types := map[string]any{
		"#/components/schemas/VerifyRequest":    api.VerifyRequest{},
		"#/components/schemas/GenerateRequest":  api.GenerateRequest{},
		"#/components/schemas/Job":              api.Job{},
		"#/components/schemas/Validators":       api.Validators{},
		"#/components/schemas/Validator":        consensus.Validator{},
		"#/components/schemas/ValidatorStats":   api.ValidatorStats{},
		"#/components/schemas/EvidenceList":     api.EvidenceList{},
		"#/components/schemas/EvidenceRecord":   api.EvidenceRecord{},
		"#/components/schemas/Penalty":          api.Penalty{},
		"#/components/schemas/Ballot":           consensus.Ballot{},
		"#/components/schemas/Health":           api.Health{},
		"#/components/schemas/Event":            api.Event{},
		"#/components/schemas/ActionRequest":    api.ActionRequest{},
		"#/components/schemas/AuditEntry":       api.AuditEntry{},
		"#/components/schemas/Audit":            api.Audit{},
		"#/components/schemas/Error":            api.Error{},
		"#/components/schemas/Quorum":           consensus.Quorum{},
		"#/components/schemas/ClaimProgress":    consensus.ClaimProgress{},
		"#/components/schemas/Claim":            claims.Claim{},
		"#/components/schemas/Certificate":      consensus.Certificate{},
		"certificate.schema.json#/$defs/claim":  consensus.CertClaim{},
		"certificate.schema.json#/$defs/ballot": consensus.Vote{},
	}
	for ref, v := range types {
		t.Run(ref, func(t *testing.T) {
			s := resolveSchema(t, ref)
			props, required := jsonFields(reflect.TypeOf(v))
			var documented []string
			for p := range s.Properties {
				documented = append(documented, p)
			}
			sort.Strings(documented)
			if !slices.Equal(documented, props) {
				t.Errorf("properties %v, the Go type encodes %v", documented, props)
			}
			docRequired := slices.Clone(s.Required)
			sort.Strings(docRequired)
			if !slices.Equal(docRequired, required) {
				t.Errorf("required %v, the Go type always encodes %v", docRequired, required)
			}
		})
	}
}

// resolveSchema follows a schema reference, and any $ref it leads to: "#/..."
// inside the current file (openapi.json at first), "file.json#/..." in a
// file of the docs directory.
func resolveSchema(t *testing.T, ref string) openAPISchema {
	t.Helper()
	file := filepath.Base(openAPIPath)
	for range 8 {
		name, pointer, _ := strings.Cut(ref, "#")
		if name != "" {
			file = name
		}
		data, err := os.ReadFile(filepath.Join(filepath.Dir(openAPIPath), file))
		if err != nil {
			t.Fatalf("$ref %q: %v", ref, err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("$ref %q: %v", ref, err)
		}
		for tok := range strings.SplitSeq(strings.TrimPrefix(pointer, "/"), "/") {
			if tok == "" {
				continue
			}
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("$ref %q: %q is not inside an object", ref, tok)
			}
			if v, ok = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]; !ok {
				t.Fatalf("$ref %q: %s has no %q", ref, file, tok)
			}
		}
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Ref string `json:"$ref"`
			openAPISchema
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("$ref %q: %v", ref, err)
		}
		if s.Ref == "" {
			return s.openAPISchema
		}
		ref = s.Ref
	}
	t.Fatalf("$ref %q: too many levels", ref)
	return openAPISchema{}
}

// jsonFields returns the sorted JSON names of a struct's encoded fields
// (embedded structs flattened) and those always present.
func jsonFields(typ reflect.Type) (names, required []string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			n, r := jsonFields(f.Type)
			names = append(names, n...)
			required = append(required, r...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		optional := slices.ContainsFunc(strings.Split(opts, ","), func(o string) bool {
			return o == "omitempty" || o == "omitzero"
		})
		if !optional {
			required = append(required, name)
		}
	}
	sort.Strings(names)
	sort.Strings(required)
	return names, required
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkSchema checks a JSON answer against the OpenAPI schema at ref: every
// required property is present and not null, and each property whose
// schema states a type has that type.
func checkSchema(t *testing.T, ref, body string) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: %v\n%s", ref, err, body)
	}
	s := resolveSchema(t, ref)
	for _, name := range s.Required {
		if val, ok := v[name]; !ok || val == nil {
			t.Errorf("%s: required %q is %v in %s", ref, name, val, body)
		}
	}
	for name, raw := range s.Properties {
		var p struct {
			Type string `json:"type"`
		}
		val, ok := v[name]
		if json.Unmarshal(raw, &p) != nil || p.Type == "" || !ok {
			continue
		}
		var okType bool
		switch p.Type {
		case "array":
			_, okType = val.([]any)
		case "object":
			_, okType = val.(map[string]any)
		case "string":
			_, okType = val.(string)
		case "integer", "number":
			_, okType = val.(float64)
		case "boolean":
			_, okType = val.(bool)
		default:
			okType = true
		}
		if !okType {
			t.Errorf("%s: %q is %v, want a %s", ref, name, val, p.Type)
		}
	}
}
