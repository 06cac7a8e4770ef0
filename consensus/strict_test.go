package consensus

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/verity-network/verity/internal/strictjson"
)

// inject puts member (`"name":value`) first in the top-level object of doc.
func inject(t *testing.T, doc, member string) string {
	t.Helper()
	i := strings.IndexByte(doc, '{')
	if i < 0 {
		t.Fatal("no object")
	}
	return doc[:i+1] + member + "," + doc[i+1:]
}

// injectBefore puts member before the first member named name, wherever it
// is nested.
func injectBefore(t *testing.T, doc, name, member string) string {
	t.Helper()
	loc := regexp.MustCompile(`"` + name + `"\s*:`).FindStringIndex(doc)
	if loc == nil {
		t.Fatalf("no member %q", name)
	}
	return doc[:loc[0]] + member + "," + doc[loc[0]:]
}

// TestParseStrict: a certificate or genesis that other parsers could read
// differently from us is refused, and the error names the key.
func TestParseStrict(t *testing.T) {
	certData, err := os.ReadFile(filepath.Join(certsDir, "valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	genData, err := os.ReadFile(filepath.Join(certsDir, "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	cert, gen := string(certData), string(genData)
	if _, err := ParseCertificate(certData); err != nil {
		t.Fatalf("valid.json: %v", err)
	}
	if _, err := ParseGenesis(genData); err != nil {
		t.Fatalf("genesis.json: %v", err)
	}
	tests := []struct {
		name  string
		parse func([]byte) error
		data  string
		want  string
	}{
		{"certificate duplicate status", parseCert, inject(t, cert, `"status":"verified"`), `duplicate key "status"`},
		{"certificate duplicate status spelled with an escape", parseCert, inject(t, cert, `"st\u0061tus":"verified"`), `duplicate key "status"`},
		{"certificate case-variant status", parseCert, inject(t, cert, `"Status":"verified"`), `unknown key "Status"`},
		{"certificate case-variant network id", parseCert, inject(t, cert, `"NETWORK_ID":1`), `unknown key "NETWORK_ID"`},
		{"certificate duplicate verdict of a claim", parseCert, injectBefore(t, cert, "verdict", `"verdict":"false"`), `duplicate key "verdict" in /claims/0`},
		{"certificate duplicate signer of a ballot", parseCert, injectBefore(t, cert, "validator", `"validator":"0x0000000000000000000000000000000000000001"`), `duplicate key "validator" in /ballots/0`},
		{"genesis duplicate network id", parseGen, inject(t, gen, `"network_id":1`), `duplicate key "network_id"`},
		{"genesis case-variant network id", parseGen, inject(t, gen, `"Network_Id":1`), `unknown key "Network_Id"`},
		{"genesis duplicate stake", parseGen, injectBefore(t, gen, "stake", `"stake":1000000`), `duplicate key "stake" in /validators/0`},
		{"genesis case-variant stake", parseGen, injectBefore(t, gen, "stake", `"Stake":1000000`), `unknown key "Stake" in /validators/0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse([]byte(tt.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, strictjson.ErrInvalid) {
				t.Fatalf("%v: not strictjson.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v: want %q in it", err, tt.want)
			}
		})
	}
}

func parseCert(data []byte) error {
	_, err := ParseCertificate(data)
	if err != nil && !errors.Is(err, ErrCertificateShape) {
		return errors.New("not ErrCertificateShape: " + err.Error())
	}
	return err
}

func parseGen(data []byte) error {
	_, err := ParseGenesis(data)
	if err != nil && !strings.HasPrefix(err.Error(), "genesis: decode: ") {
		return errors.New("not a decode error: " + err.Error())
	}
	return err
}
