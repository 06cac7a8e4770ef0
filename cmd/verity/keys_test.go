package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/verity-network/verity/sigs"
)

// runApp runs the CLI with args and returns what it printed.
func runApp(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err = runCLI(app, append([]string{"verity"}, args...))
	return out.String(), errOut.String(), err
}

func writePasswordFile(t *testing.T, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var newKeyOutput = regexp.MustCompile(`^address: (0x[0-9a-fA-F]{40})\npath:    (\S+)\n$`)

func TestKeysNewAndList(t *testing.T) {
	t.Setenv(passwordEnv, "")
	os.Unsetenv(passwordEnv)
	dir := filepath.Join(t.TempDir(), "keystore")
	pwFile := writePasswordFile(t, "file password")

	out, _, err := runApp(t, "keys", "new", "--keystore", dir, "--password-file", pwFile, "--light")
	if err != nil {
		t.Fatal(err)
	}
	m := newKeyOutput.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("unexpected output %q", out)
	}
	addr1, path1 := m[1], m[2]
	signer, err := sigs.LoadSigner(path1, "file password")
	if err != nil {
		t.Fatalf("the printed key file does not unlock with the file's password: %v", err)
	}
	if signer.Address().Hex() != addr1 {
		t.Fatalf("printed address %s, key file holds %s", addr1, signer.Address().Hex())
	}

	// From the environment, JSON output.
	t.Setenv(passwordEnv, "env password")
	out, _, err = runApp(t, "keys", "new", "--keystore", dir, "--light", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var info sigs.KeyInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("keys new --json printed %q: %v", out, err)
	}
	if _, err := sigs.UnlockKey(info.Path, "env password"); err != nil {
		t.Fatalf("key from $%s does not unlock: %v", passwordEnv, err)
	}

	out, _, err = runApp(t, "keys", "list", "--keystore", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("keys list printed %q, want two lines", out)
	}
	for _, want := range []string{addr1 + "  " + path1, info.Address.Hex() + "  " + info.Path} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("keys list output %q lacks %q", out, want)
		}
	}

	out, _, err = runApp(t, "keys", "list", "--keystore", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var listed []sigs.KeyInfo
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("keys list --json printed %q: %v", out, err)
	}
	want, err := sigs.ListKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(want) || listed[0] != want[0] || listed[1] != want[1] {
		t.Fatalf("keys list --json gave %v, want %v", listed, want)
	}
}

func TestKeysListEmpty(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := runApp(t, "keys", "list", "--keystore", dir)
	if err != nil || out != "" || !strings.Contains(errOut, "no keys") {
		t.Fatalf("empty keystore: out %q, err out %q, %v", out, errOut, err)
	}
	out, _, err = runApp(t, "keys", "list", "--keystore", dir, "--json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty keystore --json: %q, %v", out, err)
	}
}

func TestKeysErrors(t *testing.T) {
	t.Setenv(passwordEnv, "")
	os.Unsetenv(passwordEnv)
	dir := t.TempDir()
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		is   error
		text string
	}{
		{"new without password", []string{"keys", "new", "--keystore", dir, "--light"}, sigs.ErrNoPassword, "VERITY_PASSWORD"},
		{"new with empty password file", []string{"keys", "new", "--keystore", dir, "--password-file", empty}, sigs.ErrEmptyPassword, "empty"},
		{"new with missing password file", []string{"keys", "new", "--keystore", dir, "--password-file", filepath.Join(dir, "nope")}, os.ErrNotExist, "password file"},
		{"new without keystore", []string{"keys", "new", "--password-file", empty}, nil, "keystore"},
		{"new with an argument", []string{"keys", "new", "--keystore", dir, "extra"}, nil, "no arguments"},
		{"list without keystore", []string{"keys", "list"}, nil, "keystore"},
		{"list of a missing directory", []string{"keys", "list", "--keystore", filepath.Join(dir, "missing")}, os.ErrNotExist, "list keystore"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runApp(t, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
		})
	}
	if keys, err := sigs.ListKeys(dir); err != nil || len(keys) != 0 {
		t.Fatalf("failed commands left keys behind: %v, %v", keys, err)
	}
}

// keystoreWatcher is an error writer that notes, at each write, whether a
// key file already exists in dir.
type keystoreWatcher struct {
	dir    string
	buf    bytes.Buffer
	before bool // a write came while dir held no key file
}

func (k *keystoreWatcher) Write(p []byte) (int, error) {
	if entries, _ := os.ReadDir(k.dir); len(entries) == 0 {
		k.before = true
	}
	return k.buf.Write(p)
}

// TestKeysNewSaysItIsWorking: keys new says it is working before the
// seconds of scrypt, not after.
func TestKeysNewSaysItIsWorking(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	dir := filepath.Join(t.TempDir(), "keystore")
	app := newApp()
	w := &keystoreWatcher{dir: dir}
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, w
	if err := runCLI(app, []string{"verity", "keys", "new", "--keystore", dir}); err != nil {
		t.Fatal(err)
	}
	if !w.before || !strings.Contains(w.buf.String(), "scrypt takes a few seconds") {
		t.Fatalf("no message before the key was made: stderr %q", w.buf.String())
	}
}
