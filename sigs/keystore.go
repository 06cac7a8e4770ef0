package sigs

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

// Errors returned by the keystore functions. Missing files are reported with
// an error that wraps fs.ErrNotExist.
var (
	// ErrWrongPassword is go-ethereum's keystore.ErrDecrypt: the MAC of the
	// key file does not match the given password.
	ErrWrongPassword = keystore.ErrDecrypt
	// ErrMalformedKey means a file is not a readable version 3 key file.
	ErrMalformedKey = errors.New("malformed key file")
	// ErrKeyExists means the keystore already holds a file for the address.
	ErrKeyExists = errors.New("key already exists in keystore")
)

const (
	keyDirPerm  = 0o700
	keyFilePerm = 0o600
	// maxKeyFileSize bounds what is read from a file that claims to be a key;
	// a version 3 key file is about 500 bytes.
	maxKeyFileSize = 64 << 10
)

// KeyInfo names one key file of a keystore directory.
type KeyInfo struct {
	Address common.Address `json:"address"`
	Path    string         `json:"path"`
}

// NewKey generates a secp256k1 key, encrypts it with password and writes it
// to dir in the go-ethereum keystore format (version 3, scrypt and
// aes-128-ctr). With light set it uses go-ethereum's light scrypt parameters
// (N=4096, P=6: fast, meant for testnets); otherwise the standard ones
// (N=262144, P=1: about a second and 256 MB to unlock). dir is created with
// mode 0700 if needed, the file gets mode 0600 and a go-ethereum style name,
// UTC--<time>--<address hex>.
func NewKey(dir, password string, light bool) (common.Address, string, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return common.Address{}, "", fmt.Errorf("generate key: %w", err)
	}
	defer zeroKey(key)
	return storeKey(dir, password, key, light)
}

// ImportKey encrypts an existing private key with password and writes it to
// dir exactly as NewKey does. It fails with ErrKeyExists if dir already holds
// a key file for the same address.
func ImportKey(dir, password string, key *ecdsa.PrivateKey, light bool) (common.Address, string, error) {
	if key == nil || key.D == nil {
		return common.Address{}, "", errors.New("import key: no private key")
	}
	// Re-derive the key from its scalar so that a public half that does not
	// belong to it cannot name the wrong address.
	k, err := crypto.ToECDSA(crypto.FromECDSA(key))
	if err != nil {
		return common.Address{}, "", fmt.Errorf("import key: %w", err)
	}
	defer zeroKey(k)
	return storeKey(dir, password, k, light)
}

func storeKey(dir, password string, key *ecdsa.PrivateKey, light bool) (common.Address, string, error) {
	addr := crypto.PubkeyToAddress(key.PublicKey)
	if err := os.MkdirAll(dir, keyDirPerm); err != nil {
		return common.Address{}, "", fmt.Errorf("create keystore directory: %w", err)
	}
	existing, err := ListKeys(dir)
	if err != nil {
		return common.Address{}, "", err
	}
	for _, k := range existing {
		if k.Address == addr {
			return common.Address{}, "", fmt.Errorf("%w: %s in %s", ErrKeyExists, addr.Hex(), k.Path)
		}
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return common.Address{}, "", fmt.Errorf("key id: %w", err)
	}
	n, p := keystore.StandardScryptN, keystore.StandardScryptP
	if light {
		n, p = keystore.LightScryptN, keystore.LightScryptP
	}
	blob, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: addr, PrivateKey: key}, password, n, p)
	if err != nil {
		return common.Address{}, "", fmt.Errorf("encrypt key: %w", err)
	}
	path := filepath.Join(dir, keyFileName(time.Now(), addr))
	if err := writeFileAtomic(path, blob); err != nil {
		return common.Address{}, "", fmt.Errorf("write key file: %w", err)
	}
	return addr, path, nil
}

// keyFileName is go-ethereum's key file name: UTC--<ISO 8601 time with '-'
// for ':'>--<address hex without 0x>.
func keyFileName(t time.Time, addr common.Address) string {
	t = t.UTC()
	return fmt.Sprintf("UTC--%04d-%02d-%02dT%02d-%02d-%02d.%09dZ--%s",
		t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(),
		hex.EncodeToString(addr[:]))
}

// writeFileAtomic writes content to a hidden temporary file with mode 0600 in
// the same directory and renames it into place, so that a reader never sees
// a partial key file.
func writeFileAtomic(path string, content []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(keyFilePerm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(content); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// keyFileHeader is the part of a version 3 key file read without the password.
type keyFileHeader struct {
	Address string          `json:"address"`
	Crypto  json.RawMessage `json:"crypto"`
	Version json.RawMessage `json:"version"`
}

// parseKeyHeader reads the address field of a key file without decrypting it.
func parseKeyHeader(blob []byte) (common.Address, error) {
	var h keyFileHeader
	if err := json.Unmarshal(blob, &h); err != nil {
		return common.Address{}, fmt.Errorf("%w: %w", ErrMalformedKey, err)
	}
	if len(h.Crypto) == 0 || string(h.Crypto) == "null" {
		return common.Address{}, fmt.Errorf("%w: no crypto section", ErrMalformedKey)
	}
	if string(h.Version) != "3" {
		return common.Address{}, fmt.Errorf("%w: version %s, want 3", ErrMalformedKey, string(h.Version))
	}
	a := strings.TrimPrefix(h.Address, "0x")
	raw, err := hex.DecodeString(a)
	if err != nil || len(raw) != common.AddressLength {
		return common.Address{}, fmt.Errorf("%w: address %q is not 20 hex bytes", ErrMalformedKey, h.Address)
	}
	return common.BytesToAddress(raw), nil
}

// readKeyFile reads at most maxKeyFileSize bytes of path.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	defer f.Close()
	blob, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	if len(blob) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrMalformedKey, path, maxKeyFileSize)
	}
	return blob, nil
}

// ListKeys lists the key files in dir, reading only their address field:
// nothing is decrypted. Hidden files, editor backups (name ending in ~),
// directories and files that are not version 3 key files are skipped. The
// result is sorted by address, then path.
func ListKeys(dir string) ([]KeyInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list keystore: %w", err)
	}
	var out []KeyInfo
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			continue
		}
		path := filepath.Join(dir, name)
		blob, err := readKeyFile(path)
		if err != nil {
			continue
		}
		addr, err := parseKeyHeader(blob)
		if err != nil {
			continue
		}
		out = append(out, KeyInfo{Address: addr, Path: path})
	}
	slices.SortFunc(out, func(a, b KeyInfo) int {
		if c := a.Address.Cmp(b.Address); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out, nil
}

// UnlockKey decrypts the key file at path with password and returns the raw
// private key. A node needs it for its libp2p identity as well as for
// signing; everything that only signs should use LoadSigner instead. A wrong
// password gives ErrWrongPassword, a file that is not a version 3 key file
// ErrMalformedKey, a missing file an error wrapping fs.ErrNotExist.
func UnlockKey(path, password string) (*ecdsa.PrivateKey, error) {
	blob, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	addr, err := parseKeyHeader(blob)
	if err != nil {
		return nil, fmt.Errorf("unlock %s: %w", path, err)
	}
	k, err := keystore.DecryptKey(blob, password)
	switch {
	case errors.Is(err, keystore.ErrDecrypt):
		return nil, fmt.Errorf("unlock %s: %w", path, ErrWrongPassword)
	case err != nil:
		return nil, fmt.Errorf("unlock %s: %w: %w", path, ErrMalformedKey, err)
	}
	if k.Address != addr {
		zeroKey(k.PrivateKey)
		return nil, fmt.Errorf("unlock %s: %w: file names address %s, key is %s", path, ErrMalformedKey, addr.Hex(), k.Address.Hex())
	}
	return k.PrivateKey, nil
}

// KeystoreSigner is a Signer over a key decrypted from a keystore file. No
// method returns the private key, and it does not print.
type KeystoreSigner struct {
	signer *KeySigner
	path   string
}

var _ Signer = (*KeystoreSigner)(nil)

// LoadSigner decrypts the key file at path with password (see UnlockKey for
// the errors) and returns a Signer for it.
func LoadSigner(path, password string) (*KeystoreSigner, error) {
	key, err := UnlockKey(path, password)
	if err != nil {
		return nil, err
	}
	return &KeystoreSigner{signer: NewKeySigner(key), path: path}, nil
}

// Address implements Signer.
func (s *KeystoreSigner) Address() common.Address { return s.signer.Address() }

// SignDigest implements Signer.
func (s *KeystoreSigner) SignDigest(digest common.Hash) ([]byte, error) {
	return s.signer.SignDigest(digest)
}

// Path is the key file the signer was loaded from.
func (s *KeystoreSigner) Path() string { return s.path }

// String names the signer by address and file, never by key.
func (s *KeystoreSigner) String() string {
	return fmt.Sprintf("keystore signer %s (%s)", s.Address().Hex(), s.path)
}

// GoString is String, so that %#v does not print the key either.
func (s *KeystoreSigner) GoString() string { return s.String() }

// zeroKey overwrites the secret scalar of key.
func zeroKey(k *ecdsa.PrivateKey) {
	if k == nil || k.D == nil {
		return
	}
	b := k.D.Bits()
	clear(b)
}
