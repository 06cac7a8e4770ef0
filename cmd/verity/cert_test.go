package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const certVectors = "../../testdata/certs"

// runCertCLI runs the CLI with args and returns what it printed and its
// exit code as main would compute it.
func runCertCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"verity"}, args...))
	if err == nil {
		return out.String(), 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return out.String() + ee.Error(), ee.code
	}
	return out.String() + err.Error(), 1
}

func vec(name string) string { return filepath.Join(certVectors, name) }

func TestCertVerifyValid(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"rejected with output", []string{"--genesis", vec("genesis.json"), "--output", vec("output.txt"), vec("valid.json")},
			[]string{"certificate valid: rejected\n", "job:         0x88ff232e", "output:      matches", "ballots:     4 from 4 validators",
				"    2  false      100/100  The Eiffel Tower was completed in 1899.\n", "more than 2/3 of assigned stake, all validators"}},
		{"flags after the certificate", []string{"--genesis", vec("genesis.json"), vec("valid.json"), "--output", vec("output.txt")},
			[]string{"certificate valid: rejected\n", "output:      matches"}},
		{"verified without output", []string{"--genesis", vec("genesis.json"), vec("verified.json")},
			[]string{"certificate valid: verified\n", "not checked", "at least 2 of 3 assigned validators, 3 validators per claim", "claims:      3\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCertCLI(t, append([]string{"cert", "verify"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

type certCase struct {
	Name        string `json:"name"`
	Certificate string `json:"certificate"`
	Output      string `json:"output"`
	Error       string `json:"error"`
}

func loadCertCases(t *testing.T) []certCase {
	t.Helper()
	data, err := os.ReadFile(vec("invalid/cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []certCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	return cases
}

func TestCertVerifyInvalid(t *testing.T) {
	for _, tc := range loadCertCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			args := []string{"cert", "verify", "--genesis", vec("genesis.json")}
			if tc.Output != "" {
				args = append(args, "--output", vec(tc.Output))
			}
			out, code := runCertCLI(t, append(args, vec(tc.Certificate))...)
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, out)
			}
			if want := "certificate invalid: " + tc.Error + "\n"; out != want {
				t.Fatalf("output\n got %q\nwant %q", out, want)
			}
		})
	}
}

func TestCertVerifyJSON(t *testing.T) {
	type result struct {
		Valid         bool   `json:"valid"`
		Error         string `json:"error"`
		Status        string `json:"status"`
		StatedStatus  string `json:"stated_status"`
		JobID         string `json:"job_id"`
		Ballots       int    `json:"ballots"`
		OutputChecked bool   `json:"output_checked"`
	}
	decode := func(t *testing.T, out string) result {
		t.Helper()
		var r result
		dec := json.NewDecoder(strings.NewReader(out))
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("not a JSON result: %v\n%s", err, out)
		}
		return r
	}
	t.Run("valid", func(t *testing.T) {
		out, code := runCertCLI(t, "cert", "verify", "--json", "--genesis", vec("genesis.json"), "--output", vec("output.txt"), vec("valid.json"))
		r := decode(t, out)
		if code != 0 || !r.Valid || r.Error != "" || r.Status != "rejected" || r.Ballots != 4 || !r.OutputChecked ||
			!strings.HasPrefix(r.JobID, "0x88ff232e") {
			t.Fatalf("exit %d, %+v", code, r)
		}
	})
	for _, tc := range loadCertCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			args := []string{"cert", "verify", "--genesis", vec("genesis.json"), vec(tc.Certificate), "--json"}
			if tc.Output != "" {
				args = append(args, "--output", vec(tc.Output))
			}
			out, code := runCertCLI(t, args...)
			r := decode(t, strings.TrimSuffix(out, "\n"))
			if code != 1 || r.Valid || r.Error != tc.Error || r.Status != "" || r.StatedStatus == "" || r.JobID == "" {
				t.Fatalf("exit %d, %+v", code, r)
			}
		})
	}
}

func TestCertVerifyErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte(`{"version":1,"extra":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no certificate", []string{"--genesis", vec("genesis.json")}, "give the certificate file"},
		{"missing certificate", []string{"--genesis", vec("genesis.json"), filepath.Join(dir, "none.json")}, "no such file"},
		{"missing genesis", []string{"--genesis", filepath.Join(dir, "none.json"), vec("valid.json")}, "no such file"},
		{"malformed certificate", []string{"--genesis", vec("genesis.json"), garbage}, `malformed certificate: json: unknown field "extra"`},
		{"two certificates", []string{"--genesis", vec("genesis.json"), vec("valid.json"), vec("verified.json")}, "one certificate at a time"},
		{"unknown trailing flag", []string{"--genesis", vec("genesis.json"), vec("valid.json"), "--nope"}, "flag provided but not defined"},
		{"missing output file", []string{"--genesis", vec("genesis.json"), "--output", filepath.Join(dir, "none.txt"), vec("valid.json")}, "output: open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCertCLI(t, append([]string{"cert", "verify"}, tt.args...)...)
			if code != 1 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output %q, want 1 and %q", code, out, tt.want)
			}
		})
	}
}
