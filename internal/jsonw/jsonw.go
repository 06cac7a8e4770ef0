// Package jsonw writes JSON strings byte for byte as encoding/json does
// without HTML escaping, for the hand-written encoders of the messages a
// node writes most (consensus's ballots, jobs and certificates, the
// store's records).
package jsonw

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// AppendString appends s as a JSON string the way encoding/json writes
// it without HTML escaping. Text that needs no escape, as claims
// mostly are, is copied as it is; anything else goes through
// encoding/json itself.
func AppendString(dst []byte, s string) []byte {
	if Plain(s) {
		return append(append(append(dst, '"'), s...), '"')
	}
	enc, err := Marshal(s)
	if err != nil {
		panic(err) // a string always encodes
	}
	return append(dst, enc...)
}

// AppendStringHTML appends s as encoding/json's Marshal writes it, with
// its HTML escaping (of < > &): for messages that keep Marshal's bytes.
func AppendStringHTML(dst []byte, s string) []byte {
	if Plain(s) && !strings.ContainsAny(s, "<>&") {
		return append(append(append(dst, '"'), s...), '"')
	}
	enc, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always encodes
	}
	return append(dst, enc...)
}

// Marshal is encoding/json's encoding of v without HTML escaping (which
// would write each of < > & in six bytes): the encoding the hand-written
// encoders of this module reproduce, and fall back to.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Plain reports whether encoding/json writes s as it is between
// quotes (without HTML escaping): valid UTF-8 without a quote, a
// backslash, a control character, U+2028 or U+2029.
func Plain[T string | []byte](s T) bool {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == '"' || b == '\\' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}
