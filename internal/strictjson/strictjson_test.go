package strictjson_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/verity-network/verity/internal/strictjson"
)

type inner struct {
	X int `json:"x"`
}

type doc struct {
	Status string      `json:"status"`
	N      uint64      `json:"n,omitempty"`
	Hash   common.Hash `json:"hash"`
	At     time.Time   `json:"at"`
	Inner  inner       `json:"inner"`
	List   []inner     `json:"list"`
	Pair   [2]int      `json:"pair"`
}

func TestDecodeRefuses(t *testing.T) {
	deep := func(n int) string { return `{"inner":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}` }
	tests := []struct {
		name    string
		in      string
		limit   int
		key     string // the key the error must name, if any
		path    string
		want    string // in the message
		tooMany bool   // ErrTooLarge
	}{
		{name: "duplicate key", in: `{"status":"verified","status":"rejected"}`, key: "status",
			want: `duplicate key "status" (offset 21)`},
		{name: "duplicate key nested", in: `{"inner":{"x":1,"x":2}}`, key: "x", path: "/inner",
			want: `duplicate key "x" in /inner`},
		{name: "duplicate key in an array element", in: `{"list":[{"x":1},{"x":1,"x":2}]}`, key: "x", path: "/list/1",
			want: `duplicate key "x" in /list/1`},
		{name: "duplicate key with the same value", in: `{"status":"a","status":"a"}`, key: "status"},
		{name: "duplicate key spelled with an escape", in: `{"status":"a","st\u0061tus":"b"}`, key: "status"},
		{name: "duplicate unknown key", in: `{"zz":1,"zz":2}`, key: "zz"},
		{name: "case-variant key", in: `{"Status":"rejected"}`, key: "Status",
			want: `unknown key "Status" (offset 1)`},
		{name: "case-variant key after the exact one", in: `{"status":"verified","STATUS":"rejected"}`, key: "STATUS"},
		{name: "case-variant key nested", in: `{"inner":{"X":1}}`, key: "X", path: "/inner"},
		{name: "unknown key", in: `{"statuses":"x"}`, key: "statuses", want: `unknown key "statuses"`},
		{name: "unknown key with pointer characters", in: `{"a/b~c":1}`, key: "a/b~c"},
		{name: "trailing object", in: `{} {}`, want: "trailing data after the value (offset 3)"},
		{name: "trailing garbage", in: `{}x`, want: "trailing data after the value (offset 2)"},
		{name: "trailing bracket", in: `{"status":"a"}}`, want: "trailing data"},
		{name: "too deep", in: deep(strictjson.MaxDepth), want: "nested deeper than 64 (offset 72)"},
		{name: "too deep, arrays only", in: strings.Repeat("[", 100000), want: "nested deeper than 64"},
		{name: "too large", in: `{"status":"verified"}`, limit: 20, tooMany: true,
			want: "21 bytes, larger than 20"},
		{name: "invalid UTF-8", in: "{\"status\":\"\xff\"}", path: "/status",
			want: "invalid UTF-8 at /status (offset 11)"},
		{name: "invalid UTF-8 in a key", in: "{\"st\xc3\":1}", want: "invalid UTF-8"},
		{name: "lone surrogate escape", in: `{"status":"\ud800"}`, want: "surrogate"},
		{name: "empty input", in: ``, want: "empty input"},
		{name: "white space only", in: " \n", want: "empty input"},
		{name: "truncated", in: `{"status":"a"`, want: "truncated input"},
		{name: "wrong type", in: `{"status":1}`, path: "/status",
			want: "bad value at /status (offset 10): cannot decode JSON number into string"},
		{name: "negative uint", in: `{"n":-1}`, path: "/n"},
		{name: "uint overflow", in: `{"n":18446744073709551616}`, path: "/n"},
		{name: "short hash", in: `{"hash":"0x12"}`, path: "/hash", want: "hex string has length 2"},
		{name: "time not RFC 3339", in: `{"at":"2026-01-02"}`, path: "/at"},
		{name: "time with a one-digit hour", in: `{"at":"2026-01-02T3:04:05Z"}`, path: "/at"},
		{name: "array of the wrong length", in: `{"pair":[1]}`, path: "/pair"},
		{name: "not an object", in: `[]`},
		{name: "missing colon", in: `{"status" "a"}`, want: "syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			var v doc
			err := strictjson.Decode([]byte(tt.in), &v, limit)
			if err == nil {
				t.Fatalf("accepted %q", tt.in)
			}
			if !errors.Is(err, strictjson.ErrInvalid) {
				t.Fatalf("%v: not ErrInvalid", err)
			}
			if errors.Is(err, strictjson.ErrTooLarge) != tt.tooMany {
				t.Fatalf("%v: ErrTooLarge is %v", err, !tt.tooMany)
			}
			var se *strictjson.Error
			if !errors.As(err, &se) {
				t.Fatalf("%v: not an *Error", err)
			}
			if se.Key != tt.key {
				t.Errorf("key %q, want %q (%v)", se.Key, tt.key, err)
			}
			if tt.key != "" && !strings.Contains(err.Error(), `"`+tt.key+`"`) {
				t.Errorf("%v: does not name %q", err, tt.key)
			}
			if tt.path != "" && se.Path != tt.path {
				t.Errorf("path %q, want %q (%v)", se.Path, tt.path, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v: want %q in it", err, tt.want)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	deep := func(n int) string { return `{"inner":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}` }
	tests := []struct {
		name string
		in   string
	}{
		{"empty object", `{}`},
		{"white space around", " \n\t{\"status\":\"a\"}\r\n "},
		{"brackets inside strings do not count", `{"status":"` + strings.Repeat("[{", 200) + `"}`},
		{"escaped quotes inside strings", `{"status":"\"[[[[\\\"\\"}`},
		{"null slice", `{"list":null}`},
		{"null time", `{"at":null}`},
		{"max uint64", `{"n":18446744073709551615}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v doc
			if err := strictjson.Decode([]byte(tt.in), &v, 1<<20); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("depth at the limit", func(t *testing.T) {
		// The object is depth 1; it holds MaxDepth-1 arrays. An
		// unknown-depth value needs a field that takes any JSON.
		var v struct {
			Inner any `json:"inner"`
		}
		if err := strictjson.Decode([]byte(deep(strictjson.MaxDepth-1)), &v, 1<<20); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("exactly maxBytes", func(t *testing.T) {
		in := `{"status":"verified"}`
		var v doc
		if err := strictjson.Decode([]byte(in), &v, len(in)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDecodeNeedsALimit(t *testing.T) {
	var v doc
	for _, limit := range []int{0, -1} {
		err := strictjson.Decode([]byte(`{}`), &v, limit)
		if err == nil || errors.Is(err, strictjson.ErrInvalid) {
			t.Errorf("limit %d: %v, want a caller's error", limit, err)
		}
		err = strictjson.DecodeReader(strings.NewReader(`{}`), &v, limit)
		if err == nil || errors.Is(err, strictjson.ErrInvalid) {
			t.Errorf("reader, limit %d: %v, want a caller's error", limit, err)
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestDecodeReader(t *testing.T) {
	t.Run("decodes", func(t *testing.T) {
		var v doc
		if err := strictjson.DecodeReader(strings.NewReader(`{"status":"a"}`), &v, 100); err != nil || v.Status != "a" {
			t.Fatalf("%v, %+v", err, v)
		}
	})
	t.Run("body larger than the limit", func(t *testing.T) {
		var v doc
		err := strictjson.DecodeReader(strings.NewReader(`{"status":"verified"}`), &v, 10)
		if !errors.Is(err, strictjson.ErrTooLarge) || !errors.Is(err, strictjson.ErrInvalid) {
			t.Fatalf("%v: want ErrTooLarge and ErrInvalid", err)
		}
		if want := "body larger than 10 bytes"; !strings.Contains(err.Error(), want) {
			t.Fatalf("%v: want %q", err, want)
		}
	})
	t.Run("duplicate key", func(t *testing.T) {
		var v doc
		err := strictjson.DecodeReader(strings.NewReader(`{"status":"a","status":"b"}`), &v, 100)
		if !errors.Is(err, strictjson.ErrInvalid) || !strings.Contains(err.Error(), `duplicate key "status"`) {
			t.Fatal(err)
		}
	})
	t.Run("read error is not invalid JSON", func(t *testing.T) {
		var v doc
		err := strictjson.DecodeReader(failingReader{}, &v, 100)
		if !errors.Is(err, io.ErrClosedPipe) || errors.Is(err, strictjson.ErrInvalid) {
			t.Fatalf("%v: want the read error only", err)
		}
	})
	t.Run("http.MaxBytesReader's error comes through", func(t *testing.T) {
		body := io.NopCloser(strings.NewReader(`{"status":"verified"}`))
		r := http.MaxBytesReader(httptest.NewRecorder(), body, 10)
		var v doc
		err := strictjson.DecodeReader(r, &v, 10)
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			t.Fatalf("%v: want *http.MaxBytesError", err)
		}
	})
}

// TestMethodsAndTags decodes types with encoding/json tags and methods.
func TestMethodsAndTags(t *testing.T) {
	type embedded struct {
		Sig hexutil.Bytes `json:"sig"`
	}
	type outer struct {
		embedded
		Addr   common.Address  `json:"addr"`
		Ptr    *common.Address `json:"ptr,omitempty"`
		Ignore string          `json:"-"`
	}
	in := `{"sig":"0x0102","addr":"0x24d25b727eba0c4d4ef2d15d2bf9f1a2883627bf","ptr":null}`
	var v outer
	if err := strictjson.Decode([]byte(in), &v, 1<<10); err != nil {
		t.Fatal(err)
	}
	if string(v.Sig) != "\x01\x02" || v.Addr != common.HexToAddress("0x24d25b727eba0c4d4ef2d15d2bf9f1a2883627bf") || v.Ptr != nil {
		t.Fatalf("%+v", v)
	}
	if err := strictjson.Decode([]byte(`{"Ignore":"x"}`), &v, 1<<10); err == nil {
		t.Fatal(`a "-" field was decoded`)
	}
}
