package jsonw

import (
	"bytes"
	"encoding/json"
	"testing"
)

func encoded(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")) // Marshal's, written out
}

// FuzzAppendString: AppendString writes what encoding/json writes, and a
// Plain string as it is; AppendStringHTML what json.Marshal writes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain text.", "1 < 2 && 3 > 2", `"q"`, `b\s`, "nl\n", "\x00", "\x7f",
		"\u2028", "\u2029", "bad \xff", "\xed\xa0\x80", "Zürich", "🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString([]byte("x"), s)
		if want := append([]byte("x"), encoded(t, s)...); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		if Plain(s) != Plain([]byte(s)) {
			t.Fatalf("%q: Plain differs between string and []byte", s)
		}
		if Plain(s) && string(got) != `x"`+s+`"` {
			t.Fatalf("%q is plain but was written %s", s, got)
		}
		// With HTML escaping, what json.Marshal writes.
		marshaled, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendStringHTML([]byte("x"), s); !bytes.Equal(got[1:], marshaled) {
			t.Fatalf("%q with HTML escaping: got %s, want %s", s, got[1:], marshaled)
		}
	})
}
