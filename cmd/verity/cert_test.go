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
	err := runCLI(app, append([]string{"verity"}, args...))
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
			[]string{"certificate valid and final: rejected\n", "ballots:     4 from 4 validators",
				"    2  false      100/100  The Eiffel Tower was completed in 1899.\n", "more than 2/3 of assigned stake, all validators",
				"(carol), signed\n", "worth:       safe while byzantine stake is below 1/3 of the total\n",
				"(at most 33 of 100); this certificate holds up to 33\n", "matches the output given"}},
		{"flags after the certificate", []string{"--genesis", vec("genesis.json"), vec("valid.json"), "--output", vec("output.txt")},
			[]string{"certificate valid and final: rejected\n", "matches the output given"}},
		{"verified without output", []string{"--genesis", vec("genesis.json"), vec("verified.json")},
			[]string{"certificate valid and final: verified\n", "not checked", "at least 4 of 4 assigned validators, all validators", "claims:      3\n",
				"this certificate holds up to 99\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCertCLI(t, append([]string{"cert", "verify"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, out)
			}
			for _, line := range strings.Split(out, "\n") {
				if n := len([]rune(line)); n > 80 {
					t.Errorf("line of %d columns: %q", n, line)
				}
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
	Sentinel    string `json:"sentinel"`
	Error       string `json:"error"`
}

// want is the exit code and the first line cert verify must print.
func (c certCase) want() (int, string) {
	if c.Sentinel == "ErrNotFinal" {
		return 3, "certificate NOT FINAL: " + strings.TrimPrefix(c.Error, "certificate is not final: ") + "\n"
	}
	return 1, "certificate invalid: " + c.Error + "\n"
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
			wantCode, wantFirst := tc.want()
			if code != wantCode {
				t.Fatalf("exit %d, want %d: %s", code, wantCode, out)
			}
			if first, _, _ := strings.Cut(out, "\n"); first+"\n" != wantFirst || (wantCode == 1 && out != wantFirst) {
				t.Fatalf("output\n got %q\nwant first line %q", out, wantFirst)
			}
		})
	}
}

func TestCertVerifyJSON(t *testing.T) {
	type result struct {
		Result        string `json:"result"`
		Final         bool   `json:"final"`
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
		if code != 0 || r.Result != "final" || !r.Final || !r.Valid || r.Error != "" || r.Status != "rejected" || r.Ballots != 4 || !r.OutputChecked || r.JobID == "" {
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
			wantCode, _ := tc.want()
			switch {
			case code != wantCode || r.Final || r.Error != tc.Error:
				t.Fatalf("exit %d, %+v", code, r)
			case wantCode == 3 && (r.Result != "not_final" || !r.Valid || r.Status == ""):
				t.Fatalf("not final: %+v", r)
			case wantCode == 1 && (r.Result != "invalid" || r.Valid || r.Status != ""):
				t.Fatalf("invalid: %+v", r)
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
		code int
	}{
		{"no certificate", []string{"--genesis", vec("genesis.json")}, "give the certificate file", 2},
		{"missing certificate", []string{"--genesis", vec("genesis.json"), filepath.Join(dir, "none.json")}, "cannot check the certificate: certificate: open", 2},
		{"missing genesis", []string{"--genesis", filepath.Join(dir, "none.json"), vec("valid.json")}, "no such file", 2},
		{"malformed certificate", []string{"--genesis", vec("genesis.json"), garbage}, `certificate invalid: malformed certificate: `, 1},
		{"two certificates", []string{"--genesis", vec("genesis.json"), vec("valid.json"), vec("verified.json")}, "one certificate at a time", 2},
		{"unknown trailing flag", []string{"--genesis", vec("genesis.json"), vec("valid.json"), "--nope"}, "flag provided but not defined", 2},
		{"missing output file", []string{"--genesis", vec("genesis.json"), "--output", filepath.Join(dir, "none.txt"), vec("valid.json")}, "cannot check the certificate: output: open", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCertCLI(t, append([]string{"cert", "verify"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output %q, want %d and %q", code, out, tt.code, tt.want)
			}
		})
	}
}
