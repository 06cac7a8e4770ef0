package strictjson

import (
	"os"
	"strings"
	"testing"
)

func TestTooDeep(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want int
	}{
		{"flat", `{"a":1}`, 1, -1},
		{"one too deep", `{"a":[1]}`, 1, 5},
		{"array in array", `[[]]`, 1, 1},
		{"closing brings the depth down", `[[],[]]`, 2, -1},
		{"brackets in a string", `["[[[{{{"]`, 1, -1},
		{"escaped quote keeps the string open", `["\"[[["]`, 1, -1},
		{"escaped backslash closes the string", `["\\",[]]`, 1, 6},
		{"three backslashes and a quote", `["\\\"[",[]]`, 1, 9},
		{"unterminated string", `["[[[`, 1, -1},
		{"empty", ``, 1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tooDeep([]byte(tt.in), tt.max); got != tt.want {
				t.Fatalf("tooDeep(%s, %d) = %d, want %d", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

// BenchmarkTooDeep measures the depth check alone; a pass of jsontext's
// tokenizer over the same certificate costs about seven times as much.
func BenchmarkTooDeep(b *testing.B) {
	cert, err := os.ReadFile("../../testdata/certs/valid.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range []struct {
		name string
		data []byte
	}{
		{"certificate", cert},
		{"brackets-in-strings", []byte(`{"text":"` + strings.Repeat(`[{\"`, 1250) + `"}`)},
	} {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if tooDeep(in.data, MaxDepth) >= 0 {
					b.Fatal("too deep")
				}
			}
		})
	}
}
