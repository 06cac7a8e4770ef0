package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxDepth is the deepest nesting of objects and arrays Decode accepts: a
// top-level object is at depth 1. Our deepest documents (a certificate's
// ballots) reach 4.
const MaxDepth = 64

var (
	// ErrInvalid is wrapped by every refusal of an input.
	ErrInvalid = errors.New("invalid JSON")
	// ErrTooLarge is wrapped, besides ErrInvalid, by the refusal of an
	// input larger than the caller's limit.
	ErrTooLarge = errors.New("JSON input too large")
	// errNoLimit is a mistake of the caller, not of the input.
	errNoLimit = errors.New("strictjson: maxBytes must be positive")
)

// options are the decoder's rules. The strict ones are the library's
// defaults; they are stated so that they cannot change under us.
var options = json.JoinOptions(
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
	json.MatchCaseInsensitiveNames(false),
	json.RejectUnknownMembers(true),
)

// Error is a refused input.
type Error struct {
	// Reason says what is wrong, e.g. `duplicate key "status"`.
	Reason string
	// Key is the offending object member name, if there is one.
	Key string
	// Path is a JSON Pointer (RFC 6901): of the object that holds Key,
	// or else of the offending value. "" is the top level.
	Path string
	// Offset is the byte offset in the input at which the fault was
	// found, or -1.
	Offset int64
	// Detail is what the decoder said beyond Reason, if anything.
	Detail string
	// Err is the underlying error, if any: ErrTooLarge, or the decoder's
	// *json.SemanticError or *jsontext.SyntacticError.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid JSON: ")
	b.WriteString(e.Reason)
	if e.Path != "" {
		if e.Key != "" {
			b.WriteString(" in ")
		} else {
			b.WriteString(" at ")
		}
		b.WriteString(e.Path)
	}
	if e.Offset >= 0 {
		b.WriteString(" (offset ")
		b.WriteString(strconv.FormatInt(e.Offset, 10))
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap makes an Error match ErrInvalid and its underlying error.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalid}
	}
	return []error{ErrInvalid, e.Err}
}

// Decode decodes exactly one JSON value from data into v, which should be a
// pointer to a new value. It refuses data larger than maxBytes, which must
// be positive, nested deeper than MaxDepth, with a duplicate member name, a
// member name that matches no field in its exact case, trailing data or
// invalid UTF-8. Every refusal is an *Error wrapping ErrInvalid.
func Decode(data []byte, v any, maxBytes int) error {
	if maxBytes <= 0 {
		return errNoLimit
	}
	if len(data) > maxBytes {
		return &Error{
			Reason: fmt.Sprintf("%d bytes, larger than %d", len(data), maxBytes),
			Offset: -1, Err: ErrTooLarge,
		}
	}
	if off := tooDeep(data, MaxDepth); off >= 0 {
		return &Error{Reason: fmt.Sprintf("nested deeper than %d", MaxDepth), Offset: int64(off)}
	}
	if err := json.Unmarshal(data, v, options); err != nil {
		return refusal(data, err)
	}
	return nil
}

// DecodeReader is Decode of what r holds, reading at most maxBytes+1 bytes
// of it. A body larger than maxBytes is refused with ErrTooLarge and
// ErrInvalid. An error reading r is returned wrapped, without ErrInvalid
// (for an HTTP body under http.MaxBytesReader, the *http.MaxBytesError).
func DecodeReader(r io.Reader, v any, maxBytes int) error {
	if maxBytes <= 0 {
		return errNoLimit
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(maxBytes)+1))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(data) > maxBytes {
		return &Error{Reason: fmt.Sprintf("body larger than %d bytes", maxBytes), Offset: -1, Err: ErrTooLarge}
	}
	return Decode(data, v, maxBytes)
}

// refusal turns an error of the decoder into an *Error that names the key
// at fault.
func refusal(data []byte, err error) error {
	switch e := err.(type) {
	case *jsontext.SyntacticError:
		r := &Error{Offset: e.ByteOffset, Err: err}
		ptr := e.JSONPointer
		switch {
		case errors.Is(e.Err, jsontext.ErrDuplicateName):
			r.Key, r.Path = ptr.LastToken(), string(ptr.Parent())
			r.Reason = fmt.Sprintf("duplicate key %q", r.Key)
		case firstInvalidUTF8(data) == int(e.ByteOffset):
			r.Path = string(ptr)
			r.Reason = "invalid UTF-8"
		case ptr == "" && e.ByteOffset > 0 && jsontext.Value(data[:e.ByteOffset]).IsValid():
			r.Reason = "trailing data after the value"
		case errors.Is(e.Err, io.ErrUnexpectedEOF) && len(bytes.TrimSpace(data)) == 0:
			r.Reason, r.Offset = "empty input", -1
		case errors.Is(e.Err, io.ErrUnexpectedEOF):
			r.Reason = "truncated input"
		default:
			r.Path = string(ptr)
			r.Reason = "syntax error"
			r.Detail = e.Err.Error()
		}
		return r
	case *json.SemanticError:
		ptr := e.JSONPointer
		if errors.Is(e.Err, json.ErrUnknownName) {
			key := ptr.LastToken()
			return &Error{
				Reason: fmt.Sprintf("unknown key %q", key), Key: key, Path: string(ptr.Parent()),
				Offset: e.ByteOffset, Err: err,
			}
		}
		return &Error{
			Reason: "bad value", Path: string(ptr), Offset: e.ByteOffset,
			Detail: semanticDetail(e), Err: err,
		}
	default:
		return &Error{Reason: "undecodable", Offset: -1, Detail: err.Error(), Err: err}
	}
}

// semanticDetail says what could not be decoded into what, and why. The
// library's own message is not used: it words itself differently from one
// process to the next, on purpose, and gives the place, which Error gives.
func semanticDetail(e *json.SemanticError) string {
	var b strings.Builder
	b.WriteString("cannot decode")
	switch e.JSONKind {
	case 'n':
		b.WriteString(" JSON null")
	case 'f', 't':
		b.WriteString(" JSON boolean")
	case '"':
		b.WriteString(" JSON string")
	case '0':
		b.WriteString(" JSON number")
	case '{', '}':
		b.WriteString(" JSON object")
	case '[', ']':
		b.WriteString(" JSON array")
	}
	if n := len(e.JSONValue); n > 0 && n <= 64 {
		b.WriteString(" ")
		b.Write(e.JSONValue)
	}
	if e.GoType != nil {
		b.WriteString(" into ")
		b.WriteString(e.GoType.String())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// tooDeep returns the offset of the first '{' or '[' that opens an object or
// array nested deeper than max, or -1 if there is none. It does not check
// the syntax, which the decoder does next; for valid JSON it is exact.
func tooDeep(data []byte, max int) int {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			end := stringEnd(data, i+1)
			if end < 0 {
				return -1 // unterminated: the decoder says so
			}
			i = end
		case '{', '[':
			depth++
			if depth > max {
				return i
			}
		case '}', ']':
			depth--
		}
	}
	return -1
}

// stringEnd returns the offset of the quote that closes the string whose
// contents start at from, or -1.
func stringEnd(data []byte, from int) int {
	for from < len(data) {
		j := bytes.IndexByte(data[from:], '"')
		if j < 0 {
			return -1
		}
		q := from + j
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for k := q - 1; k >= from && data[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q
		}
		from = q + 1
	}
	return -1
}

// firstInvalidUTF8 returns the offset of the first byte of data that is
// not valid UTF-8, or -1.
func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		if data[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}
