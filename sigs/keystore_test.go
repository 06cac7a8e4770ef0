package sigs

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

const testPassword = "correct horse battery staple"

var keyFileNameRE = regexp.MustCompile(`^UTC--\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{9}Z--[0-9a-f]{40}$`)

func TestNewKeyRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keystore")
	addr, path, err := NewKey(dir, testPassword, true)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != dir {
		t.Errorf("key written to %s, want inside %s", path, dir)
	}
	name := filepath.Base(path)
	if !keyFileNameRE.MatchString(name) {
		t.Errorf("file name %q is not go-ethereum style", name)
	}
	if !strings.HasSuffix(name, strings.ToLower(addr.Hex()[2:])) {
		t.Errorf("file name %q does not end with the address %s", name, addr.Hex())
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	st, err = os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("keystore directory mode %v, want 0700", st.Mode().Perm())
	}

	key, err := UnlockKey(path, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if got := crypto.PubkeyToAddress(key.PublicKey); got != addr {
		t.Fatalf("unlocked key is %s, NewKey said %s", got.Hex(), addr.Hex())
	}

	// go-ethereum itself reads the file, with the light scrypt parameters.
	blob, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gk, err := keystore.DecryptKey(blob, testPassword)
	if err != nil {
		t.Fatalf("go-ethereum cannot decrypt the file: %v", err)
	}
	if gk.Address != addr {
		t.Fatalf("go-ethereum reads address %s, want %s", gk.Address.Hex(), addr.Hex())
	}
	var raw struct {
		Crypto struct {
			KDFParams struct {
				N int `json:"n"`
				P int `json:"p"`
			} `json:"kdfparams"`
		} `json:"crypto"`
	}
	if err := json.Unmarshal(blob, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Crypto.KDFParams.N != keystore.LightScryptN || raw.Crypto.KDFParams.P != keystore.LightScryptP {
		t.Errorf("light key has scrypt n=%d p=%d, want n=%d p=%d", raw.Crypto.KDFParams.N, raw.Crypto.KDFParams.P, keystore.LightScryptN, keystore.LightScryptP)
	}
}

func TestNewKeyStandardScrypt(t *testing.T) {
	if testing.Short() {
		t.Skip("standard scrypt takes about a second and 256 MB")
	}
	dir := t.TempDir()
	_, path, err := NewKey(dir, testPassword, false)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Crypto struct {
			KDFParams struct {
				N int `json:"n"`
				P int `json:"p"`
			} `json:"kdfparams"`
		} `json:"crypto"`
	}
	if err := json.Unmarshal(blob, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Crypto.KDFParams.N != keystore.StandardScryptN || raw.Crypto.KDFParams.P != keystore.StandardScryptP {
		t.Errorf("standard key has scrypt n=%d p=%d", raw.Crypto.KDFParams.N, raw.Crypto.KDFParams.P)
	}
}

func TestUnlockKeyErrors(t *testing.T) {
	dir := t.TempDir()
	_, path, err := NewKey(dir, testPassword, true)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The same ciphertext under another file's address field.
	var m map[string]any
	if err := json.Unmarshal(blob, &m); err != nil {
		t.Fatal(err)
	}
	m["address"] = strings.Repeat("ab", 20)
	swapped, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// A valid header whose crypto section is broken.
	m["address"] = strings.ToLower(strings.TrimPrefix(crypto.PubkeyToAddress(mustUnlock(t, path).PublicKey).Hex(), "0x"))
	m["crypto"] = map[string]any{"cipher": "rot13"}
	badCipher, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		path     string
		password string
		want     error
		text     string
	}{
		{"wrong password", path, "not the password", ErrWrongPassword, "could not decrypt key with given password"},
		{"empty password", path, "", ErrWrongPassword, "could not decrypt key with given password"},
		{"missing file", filepath.Join(dir, "nope"), testPassword, fs.ErrNotExist, "no such file"},
		{"not json", write("garbage", "this is not json"), testPassword, ErrMalformedKey, "malformed key file"},
		{"truncated json", write("truncated", string(blob[:len(blob)/2])), testPassword, ErrMalformedKey, "malformed key file"},
		{"json without crypto", write("nocrypto", `{"address":"`+strings.Repeat("00", 20)+`","version":3}`), testPassword, ErrMalformedKey, "no crypto section"},
		{"version 1", write("v1", `{"address":"`+strings.Repeat("00", 20)+`","crypto":{},"version":"1"}`), testPassword, ErrMalformedKey, "version"},
		{"short address", write("shortaddr", `{"address":"abcd","crypto":{},"version":3}`), testPassword, ErrMalformedKey, "address"},
		{"address does not match key", write("swapped", string(swapped)), testPassword, ErrMalformedKey, "file names address"},
		{"unsupported cipher", write("badcipher", string(badCipher)), testPassword, ErrMalformedKey, "cipher not supported"},
		{"directory", dir, testPassword, nil, "read key file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := UnlockKey(tc.path, tc.password)
			if err == nil {
				t.Fatalf("unlocked %s", crypto.PubkeyToAddress(k.PublicKey).Hex())
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %q is not %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
			if _, err2 := LoadSigner(tc.path, tc.password); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("LoadSigner error %v, UnlockKey error %v", err2, err)
			}
		})
	}
}

func mustUnlock(t *testing.T, path string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := UnlockKey(path, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestImportKey(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t, 3)
	want := crypto.PubkeyToAddress(key.PublicKey)
	addr, path, err := ImportKey(dir, testPassword, key, true)
	if err != nil {
		t.Fatal(err)
	}
	if addr != want {
		t.Fatalf("imported as %s, want %s", addr.Hex(), want.Hex())
	}
	if key.D.Sign() == 0 {
		t.Fatal("ImportKey zeroed the caller's key")
	}
	got, err := UnlockKey(path, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if got.D.Cmp(key.D) != 0 {
		t.Fatal("unlocked key differs from the imported one")
	}
	if _, _, err := ImportKey(dir, "other", key, true); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second import: got %v, want ErrKeyExists", err)
	}
	if _, _, err := ImportKey(dir, testPassword, nil, true); err == nil {
		t.Fatal("imported a nil key")
	}
}

func TestListKeys(t *testing.T) {
	dir := t.TempDir()
	if got, err := ListKeys(dir); err != nil || len(got) != 0 {
		t.Fatalf("empty keystore: %v, %v", got, err)
	}
	var want []common.Address
	for i := range 3 {
		addr, _, err := ImportKey(dir, testPassword, testKey(t, i), true)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, addr)
	}
	// Files that must be ignored.
	for name, content := range map[string]string{
		"README":         "not a key",
		"genesis.json":   `{"validators":[]}`,
		"nocrypto.json":  `{"address":"` + strings.Repeat("11", 20) + `"}`,
		".hidden":        `{"address":"` + strings.Repeat("22", 20) + `","crypto":{},"version":3}`,
		"backup~":        `{"address":"` + strings.Repeat("33", 20) + `","crypto":{},"version":3}`,
		"badaddress":     `{"address":"zz","crypto":{},"version":3}`,
		"version-string": `{"address":"` + strings.Repeat("44", 20) + `","crypto":{},"version":"3"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := ListKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d keys, want %d: %v", len(got), len(want), got)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Address.Cmp(got[i].Address) >= 0 {
			t.Errorf("not sorted by address: %v", got)
		}
	}
	for _, a := range want {
		found := false
		for _, k := range got {
			if k.Address == a {
				found = true
				if !strings.HasSuffix(k.Path, strings.ToLower(a.Hex()[2:])) {
					t.Errorf("key %s listed with path %s", a.Hex(), k.Path)
				}
			}
		}
		if !found {
			t.Errorf("key %s not listed", a.Hex())
		}
	}
	if _, err := ListKeys(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: got %v, want fs.ErrNotExist", err)
	}
}

func TestKeystoreSigner(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t, 1)
	addr, path, err := ImportKey(dir, testPassword, key, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(path, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if s.Address() != addr || s.Path() != path {
		t.Fatalf("signer %s at %s, want %s at %s", s.Address().Hex(), s.Path(), addr.Hex(), path)
	}
	digest := BallotDigest(7, BallotData{JobID: common.HexToHash("0x01"), ClaimIndexes: []uint32{0}, Verdicts: []uint8{1}})
	sig, err := s.SignDigest(digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Recover(digest, sig)
	if err != nil {
		t.Fatal(err)
	}
	if got != addr {
		t.Fatalf("signature recovers to %s, want %s", got.Hex(), addr.Hex())
	}
	want, err := SignDigest(key, digest)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(sig) {
		t.Fatal("keystore signer and in-memory key sign differently")
	}
	secret := fmt.Sprintf("%x", crypto.FromECDSA(key))
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, s); strings.Contains(out, secret) || !strings.Contains(out, addr.Hex()) {
			t.Errorf("%s prints %q", format, out)
		}
	}
}
