package sigs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const env = "VERITY_TEST_PASSWORD"
	tests := []struct {
		name    string
		file    string
		envVar  string
		envSet  bool
		envVal  string
		want    string
		wantErr error
	}{
		{name: "file with newline", file: file("nl", "secret\n"), want: "secret"},
		{name: "file with crlf", file: file("crlf", "secret\r\n"), want: "secret"},
		{name: "file without newline", file: file("plain", "secret"), want: "secret"},
		{name: "only the first line", file: file("lines", "first\nsecond\n"), want: "first"},
		{name: "spaces are kept", file: file("spaces", "  two words \n"), want: "  two words "},
		{name: "file wins over env", file: file("wins", "from-file\n"), envVar: env, envSet: true, envVal: "from-env", want: "from-file"},
		{name: "env", envVar: env, envSet: true, envVal: "from env", want: "from env"},
		{name: "empty file", file: file("empty", ""), wantErr: ErrEmptyPassword},
		{name: "empty first line", file: file("emptyline", "\nsecond\n"), wantErr: ErrEmptyPassword},
		{name: "missing file", file: filepath.Join(dir, "missing"), envVar: env, envSet: true, envVal: "x", wantErr: fs.ErrNotExist},
		{name: "empty env", envVar: env, envSet: true, envVal: "", wantErr: ErrEmptyPassword},
		{name: "env not set", envVar: env, wantErr: ErrNoPassword},
		{name: "nothing given", wantErr: ErrNoPassword},
		{name: "first line too long", file: file("long", strings.Repeat("x", maxPasswordFileSize+10)), wantErr: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.envSet {
				t.Setenv(env, tc.envVal)
			} else {
				t.Setenv(env, "")
				os.Unsetenv(env)
			}
			got, err := ReadPassword(tc.file, tc.envVar)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got password %q, want an error", got)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %q is not %v", err, tc.wantErr)
			}
		})
	}
}
