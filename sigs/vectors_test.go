package sigs

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

var update = flag.Bool("update", false, "rewrite testdata/eip712/vectors.json from the Go code")

var vectorsPath = filepath.Join("..", "testdata", "eip712", "vectors.json")

// vectorFile is the layout of testdata/eip712/vectors.json. Numbers that may
// exceed 2^53 (chain ids, deadlines) are decimal strings so that JSON readers
// with float64 numbers keep them exact.
type vectorFile struct {
	Comment       string          `json:"comment"`
	Domain        vectorDomain    `json:"domain"`
	BallotType    string          `json:"ballotType"`
	JobType       string          `json:"jobType"`
	Ballots       []ballotVector  `json:"ballots"`
	Jobs          []jobVector     `json:"jobs"`
	BadSignatures []badSigVector  `json:"badSignatures"`
	Keys          []vectorKeyInfo `json:"keys"`
	// The certificate vectors came after the others and are appended here,
	// so that adding them left the earlier part of the file as it was.
	CertificateType     string              `json:"certificateType"`
	CertificateTypeHash common.Hash         `json:"certificateTypeHash"`
	Certificates        []certificateVector `json:"certificates"`
}

type vectorDomain struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

type vectorKeyInfo struct {
	Seed       string        `json:"seed"`
	PrivateKey hexutil.Bytes `json:"privateKey"`
	Address    string        `json:"address"`
}

// vectorSigned is what every signed vector carries besides its message.
type vectorSigned struct {
	Name            string        `json:"name"`
	ChainID         string        `json:"chainId"`
	KeySeed         string        `json:"keySeed"`
	PrivateKey      hexutil.Bytes `json:"privateKey"`
	Signer          string        `json:"signer"`
	DomainSeparator common.Hash   `json:"domainSeparator"`
	StructHash      common.Hash   `json:"structHash"`
	Digest          common.Hash   `json:"digest"`
	Signature       hexutil.Bytes `json:"signature"`
}

type ballotVector struct {
	vectorSigned
	Ballot ballotMessage `json:"ballot"`
}

type ballotMessage struct {
	JobID        common.Hash `json:"jobId"`
	OutputHash   common.Hash `json:"outputHash"`
	ClaimsRoot   common.Hash `json:"claimsRoot"`
	ClaimIndexes []uint32    `json:"claimIndexes"`
	Verdicts     []uint16    `json:"verdicts"` // not []uint8: that would be base64
}

type jobVector struct {
	vectorSigned
	Job jobMessage `json:"job"`
}

type jobMessage struct {
	JobID      common.Hash `json:"jobId"`
	OutputHash common.Hash `json:"outputHash"`
	ClaimsRoot common.Hash `json:"claimsRoot"`
	ClaimCount uint32      `json:"claimCount"`
	Deadline   string      `json:"deadline"`
	Resend     string      `json:"resend"`
}

type certificateVector struct {
	vectorSigned
	Certificate certificateMessage `json:"certificate"`
}

// certificateMessage is the gateway-signed content of a certificate. Status
// codes: 1 verified, 2 rejected, 3 unresolved; verdict codes: 0 undecided,
// 1 true, 2 false; voters in ascending order; issuedAt in unix milliseconds.
type certificateMessage struct {
	JobID       common.Hash      `json:"jobId"`
	GenesisHash common.Hash      `json:"genesisHash"`
	Status      uint8            `json:"status"`
	Verdicts    []uint16         `json:"verdicts"` // not []uint8: that would be base64
	Voters      []common.Address `json:"voters"`
	IssuedAt    string           `json:"issuedAt"`
}

// badSigVector is a signature over Digest that every strict checker must
// refuse; Error names the Go sentinel it must fail with.
type badSigVector struct {
	Name      string        `json:"name"`
	Digest    common.Hash   `json:"digest"`
	Signature hexutil.Bytes `json:"signature"`
	Error     string        `json:"error"`
}

var badSigErrors = map[string]error{
	"length": ErrSignatureLength,
	"v":      ErrSignatureV,
	"high-s": ErrSignatureHighS,
	"values": ErrSignatureValues,
}

func (m ballotMessage) data() (BallotData, error) {
	b := BallotData{JobID: m.JobID, OutputHash: m.OutputHash, ClaimsRoot: m.ClaimsRoot, ClaimIndexes: m.ClaimIndexes}
	if b.ClaimIndexes == nil {
		b.ClaimIndexes = []uint32{}
	}
	b.Verdicts = make([]uint8, len(m.Verdicts))
	for i, v := range m.Verdicts {
		if v > math.MaxUint8 {
			return BallotData{}, fmt.Errorf("verdict %d is %d, not a uint8", i, v)
		}
		b.Verdicts[i] = uint8(v)
	}
	return b, nil
}

func (m jobMessage) data() (JobData, error) {
	d, err := strconv.ParseUint(m.Deadline, 10, 64)
	if err != nil {
		return JobData{}, fmt.Errorf("deadline: %w", err)
	}
	r, err := strconv.ParseUint(m.Resend, 10, 64)
	if err != nil {
		return JobData{}, fmt.Errorf("resend: %w", err)
	}
	return JobData{JobID: m.JobID, OutputHash: m.OutputHash, ClaimsRoot: m.ClaimsRoot, ClaimCount: m.ClaimCount, Deadline: d, Resend: r}, nil
}

func (m certificateMessage) data() (CertificateData, error) {
	c := CertificateData{JobID: m.JobID, GenesisHash: m.GenesisHash, Status: m.Status, Voters: m.Voters}
	if c.Voters == nil {
		c.Voters = []common.Address{}
	}
	c.Verdicts = make([]uint8, len(m.Verdicts))
	for i, v := range m.Verdicts {
		if v > math.MaxUint8 {
			return CertificateData{}, fmt.Errorf("verdict %d is %d, not a uint8", i, v)
		}
		c.Verdicts[i] = uint8(v)
	}
	var err error
	if c.IssuedAt, err = strconv.ParseUint(m.IssuedAt, 10, 64); err != nil {
		return CertificateData{}, fmt.Errorf("issuedAt: %w", err)
	}
	return c, nil
}

func vecHash(s string) common.Hash { return crypto.Keccak256Hash([]byte(s)) }

// buildVectors computes the vector file from the Go code.
func buildVectors(t *testing.T) *vectorFile {
	t.Helper()
	const maxSafeInteger = 1<<53 - 1
	f := &vectorFile{
		Comment: "EIP-712 test vectors for Verity ballots, jobs and certificates. The private keys are keccak256(seed) " +
			"of public phrases: TEST ONLY, never use them for anything of value. Regenerate with " +
			"`go test ./sigs -run TestVectors -update`; check independently with `bash scripts/interop/run.sh`.",
		Domain:     vectorDomain{Type: DomainType, Name: DomainName, Version: DomainVersion},
		BallotType: BallotType,
		JobType:    JobType,

		CertificateType:     CertificateType,
		CertificateTypeHash: vecHash(CertificateType),
	}
	for i := range 4 {
		k := testKey(t, i)
		f.Keys = append(f.Keys, vectorKeyInfo{Seed: testKeySeed(i), PrivateKey: crypto.FromECDSA(k), Address: crypto.PubkeyToAddress(k.PublicKey).Hex()})
	}
	seq := func(n int) ([]uint32, []uint16) {
		idx, ver := make([]uint32, n), make([]uint16, n)
		for i := range n {
			idx[i], ver[i] = uint32(i), uint16(i%3)
		}
		return idx, ver
	}
	many, manyV := seq(64)
	ballots := []struct {
		name  string
		chain uint64
		key   int
		job   string
		idx   []uint32
		ver   []uint16
	}{
		{"empty arrays", 1, 0, "job empty", []uint32{}, []uint16{}},
		{"one claim true", 1, 1, "job one", []uint32{0}, []uint16{1}},
		{"one claim false", 7, 2, "job one", []uint32{0}, []uint16{2}},
		{"one claim abstain", 7, 3, "job one", []uint32{0}, []uint16{0}},
		{"all three verdicts", 7, 0, "job three", []uint32{0, 1, 2}, []uint16{1, 2, 0}},
		{"many claims", 7, 1, "job many", many, manyV},
		{"max uint32 index", maxSafeInteger, 2, "job max index", []uint32{0, math.MaxUint32 - 1, math.MaxUint32}, []uint16{1, 0, 2}},
		{"sparse indexes", maxSafeInteger, 3, "job sparse", []uint32{3, 17, 1000000}, []uint16{2, 2, 1}},
		{"chain id max uint64", math.MaxUint64, 0, "job one", []uint32{0}, []uint16{1}},
		{"zero hashes", 1, 1, "", []uint32{0}, []uint16{1}},
	}
	for _, b := range ballots {
		msg := ballotMessage{ClaimIndexes: b.idx, Verdicts: b.ver}
		if b.job != "" {
			msg.JobID = vecHash("verity vector " + b.job)
			msg.OutputHash = vecHash("verity vector output of " + b.job)
			msg.ClaimsRoot = vecHash("verity vector claims root of " + b.job)
		}
		data, err := msg.data()
		if err != nil {
			t.Fatal(err)
		}
		v := ballotVector{Ballot: msg}
		v.vectorSigned = signVector(t, b.name, b.chain, b.key, BallotStructHash(data))
		f.Ballots = append(f.Ballots, v)
	}
	jobs := []struct {
		name     string
		chain    uint64
		key      int
		count    uint32
		deadline uint64
		resend   uint64
	}{
		{"no claims, zero deadline", 1, 0, 0, 0, 0},
		{"three claims", 7, 1, 3, 1767225600000, 0},
		{"three claims, re-announced", 7, 1, 3, 1767225600000, 1767225597500},
		{"max claim count, deadline and resend", maxSafeInteger, 2, math.MaxUint32, math.MaxUint64, math.MaxUint64},
	}
	for _, j := range jobs {
		msg := jobMessage{
			JobID:      vecHash("verity vector " + j.name),
			OutputHash: vecHash("verity vector output of " + j.name),
			ClaimsRoot: vecHash("verity vector claims root of " + j.name),
			ClaimCount: j.count,
			Deadline:   strconv.FormatUint(j.deadline, 10),
			Resend:     strconv.FormatUint(j.resend, 10),
		}
		data, err := msg.data()
		if err != nil {
			t.Fatal(err)
		}
		v := jobVector{Job: msg}
		v.vectorSigned = signVector(t, j.name, j.chain, j.key, JobStructHash(data))
		f.Jobs = append(f.Jobs, v)
	}
	// Each certificate is signed by its gateway (key), one of its voters or
	// not; voters are addresses of test keys in ascending order, as in a
	// certificate.
	voters := func(keys ...int) []common.Address {
		a := make([]common.Address, len(keys))
		for i, k := range keys {
			a[i] = crypto.PubkeyToAddress(testKey(t, k).PublicKey)
		}
		slices.SortFunc(a, func(x, y common.Address) int { return bytes.Compare(x[:], y[:]) })
		return a
	}
	certs := []struct {
		name     string
		chain    uint64
		key      int
		status   uint8
		verdicts []uint16
		voters   []common.Address
		issuedAt uint64
	}{
		{"verified, one voter", 31337, 0, 1, []uint16{1, 1, 1}, voters(0), 1767225600123},
		{"rejected, several voters", 7, 1, 2, []uint16{1, 2, 1, 2}, voters(0, 1, 2, 3), 1767225600000},
		{"unresolved, no voters, zero issuedAt", 1, 2, 3, []uint16{0, 0}, []common.Address{}, 0},
		{"unresolved, undecided among decided", 7, 3, 3, []uint16{1, 0, 1, 0, 1}, voters(1, 3, 2), 1767225659999},
		{"no claims", 1, 0, 1, []uint16{}, []common.Address{}, 1},
		{"many claims", 31337, 1, 2, manyV, voters(3, 2, 1, 0), 4102444800000},
		{"max issuedAt", maxSafeInteger, 2, 2, []uint16{2, 0, 1}, voters(0, 2), math.MaxUint64},
		{"issuedAt above 2^53", math.MaxUint64, 3, 1, []uint16{1}, voters(3), 1<<53 + 1},
	}
	for _, c := range certs {
		msg := certificateMessage{
			JobID:       vecHash("verity vector certificate of " + c.name),
			GenesisHash: vecHash("verity vector genesis of " + c.name),
			Status:      c.status,
			Verdicts:    c.verdicts,
			Voters:      c.voters,
			IssuedAt:    strconv.FormatUint(c.issuedAt, 10),
		}
		data, err := msg.data()
		if err != nil {
			t.Fatal(err)
		}
		v := certificateVector{Certificate: msg}
		v.vectorSigned = signVector(t, c.name, c.chain, c.key, CertificateStructHash(data))
		f.Certificates = append(f.Certificates, v)
	}
	f.BadSignatures = buildBadSignatures(f.Ballots[1].Digest, f.Ballots[1].Signature)
	return f
}

func signVector(t *testing.T, name string, chain uint64, key int, structHash common.Hash) vectorSigned {
	t.Helper()
	k := testKey(t, key)
	dom := DomainSeparator(chain)
	digest := TypedDataDigest(dom, structHash)
	sig, err := SignDigest(k, digest)
	if err != nil {
		t.Fatal(err)
	}
	return vectorSigned{
		Name:            name,
		ChainID:         strconv.FormatUint(chain, 10),
		KeySeed:         testKeySeed(key),
		PrivateKey:      crypto.FromECDSA(k),
		Signer:          crypto.PubkeyToAddress(k.PublicKey).Hex(),
		DomainSeparator: dom,
		StructHash:      structHash,
		Digest:          digest,
		Signature:       sig,
	}
}

// buildBadSignatures derives malformed variants of a valid signature.
func buildBadSignatures(digest common.Hash, sig []byte) []badSigVector {
	n := crypto.S256().Params().N
	mod := func(f func(s []byte)) hexutil.Bytes {
		c := bytes.Clone(sig)
		f(c)
		return c
	}
	highS := mod(func(c []byte) {
		s := new(big.Int).Sub(n, new(big.Int).SetBytes(c[32:64]))
		s.FillBytes(c[32:64])
		c[64] = 27 + 28 - c[64] // the same point, the other parity of y
	})
	return []badSigVector{
		{"64 bytes", digest, sig[:64], "length"},
		{"66 bytes", digest, append(bytes.Clone(sig), 0), "length"},
		{"v = 0", digest, mod(func(c []byte) { c[64] = 0 }), "v"},
		{"v = 1", digest, mod(func(c []byte) { c[64] = 1 }), "v"},
		{"v = 29", digest, mod(func(c []byte) { c[64] = 29 }), "v"},
		{"high s", digest, highS, "high-s"},
		{"r = 0", digest, mod(func(c []byte) { clear(c[:32]) }), "values"},
		{"s = 0", digest, mod(func(c []byte) { clear(c[32:64]) }), "values"},
		{"r = n", digest, mod(func(c []byte) { n.FillBytes(c[:32]) }), "values"},
	}
}

func encodeVectors(t *testing.T, f *vectorFile) []byte {
	t.Helper()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestVectors(t *testing.T) {
	want := encodeVectors(t, buildVectors(t))
	if *update {
		if err := os.MkdirAll(filepath.Dir(vectorsPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", vectorsPath)
	}
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("%v (generate with: go test ./sigs -run TestVectors -update)", err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("decode %s: %v", vectorsPath, err)
	}
	if f.Domain.Type != DomainType || f.Domain.Name != DomainName || f.Domain.Version != DomainVersion ||
		f.BallotType != BallotType || f.JobType != JobType || f.CertificateType != CertificateType {
		t.Errorf("type strings in %s differ from the Go constants", vectorsPath)
	}
	if f.CertificateTypeHash != certTypeHash {
		t.Errorf("certificate type hash in %s is %s, Go has %s", vectorsPath, f.CertificateTypeHash.Hex(), certTypeHash.Hex())
	}
	if len(f.Ballots) == 0 || len(f.Jobs) == 0 || len(f.Certificates) == 0 || len(f.BadSignatures) == 0 {
		t.Fatalf("%s has %d ballots, %d jobs, %d certificates, %d bad signatures",
			vectorsPath, len(f.Ballots), len(f.Jobs), len(f.Certificates), len(f.BadSignatures))
	}
	for _, k := range f.Keys {
		if !bytes.Equal(k.PrivateKey, crypto.Keccak256([]byte(k.Seed))) {
			t.Errorf("key %q: private key is not keccak256 of its seed", k.Seed)
		}
	}
	for _, v := range f.Ballots {
		t.Run("ballot/"+v.Name, func(t *testing.T) {
			data, err := v.Ballot.data()
			if err != nil {
				t.Fatal(err)
			}
			checkSigned(t, v.vectorSigned, BallotStructHash(data))
			chain, _ := strconv.ParseUint(v.ChainID, 10, 64)
			if got := BallotDigest(chain, data); got != v.Digest {
				t.Errorf("BallotDigest %s, vector %s", got.Hex(), v.Digest.Hex())
			}
		})
	}
	for _, v := range f.Jobs {
		t.Run("job/"+v.Name, func(t *testing.T) {
			data, err := v.Job.data()
			if err != nil {
				t.Fatal(err)
			}
			checkSigned(t, v.vectorSigned, JobStructHash(data))
			chain, _ := strconv.ParseUint(v.ChainID, 10, 64)
			if got := JobDigest(chain, data); got != v.Digest {
				t.Errorf("JobDigest %s, vector %s", got.Hex(), v.Digest.Hex())
			}
		})
	}
	for _, v := range f.Certificates {
		t.Run("certificate/"+v.Name, func(t *testing.T) {
			data, err := v.Certificate.data()
			if err != nil {
				t.Fatal(err)
			}
			checkSigned(t, v.vectorSigned, CertificateStructHash(data))
			chain, _ := strconv.ParseUint(v.ChainID, 10, 64)
			if got := CertificateDigest(chain, data); got != v.Digest {
				t.Errorf("CertificateDigest %s, vector %s", got.Hex(), v.Digest.Hex())
			}
			if !slices.IsSortedFunc(data.Voters, func(x, y common.Address) int { return bytes.Compare(x[:], y[:]) }) {
				t.Errorf("voters are not in ascending order")
			}
		})
	}
	for _, v := range f.BadSignatures {
		t.Run("bad/"+v.Name, func(t *testing.T) {
			want, ok := badSigErrors[v.Error]
			if !ok {
				t.Fatalf("unknown error name %q", v.Error)
			}
			addr, err := Recover(v.Digest, v.Signature)
			if !errors.Is(err, want) {
				t.Fatalf("Recover gave %s, %v; want %v", addr.Hex(), err, want)
			}
		})
	}
	if !bytes.Equal(raw, want) {
		t.Errorf("%s differs from what the Go code generates; if the change is intended, run: go test ./sigs -run TestVectors -update", vectorsPath)
	}
}

// checkSigned recomputes every derived field of a signed vector.
func checkSigned(t *testing.T, v vectorSigned, structHash common.Hash) {
	t.Helper()
	chain, err := strconv.ParseUint(v.ChainID, 10, 64)
	if err != nil {
		t.Fatalf("chainId %q: %v", v.ChainID, err)
	}
	if !bytes.Equal(v.PrivateKey, crypto.Keccak256([]byte(v.KeySeed))) {
		t.Errorf("private key is not keccak256(%q)", v.KeySeed)
	}
	key, err := crypto.ToECDSA(v.PrivateKey)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	if got := crypto.PubkeyToAddress(key.PublicKey).Hex(); got != v.Signer {
		t.Errorf("signer: key gives %s, vector %s", got, v.Signer)
	}
	if got := DomainSeparator(chain); got != v.DomainSeparator {
		t.Errorf("domain separator: Go %s, vector %s", got.Hex(), v.DomainSeparator.Hex())
	}
	if structHash != v.StructHash {
		t.Errorf("struct hash: Go %s, vector %s", structHash.Hex(), v.StructHash.Hex())
	}
	digest := TypedDataDigest(v.DomainSeparator, v.StructHash)
	if digest != v.Digest {
		t.Errorf("digest: Go %s, vector %s", digest.Hex(), v.Digest.Hex())
	}
	if err := CheckSignature(v.Signature); err != nil {
		t.Errorf("signature shape: %v", err)
	}
	addr, err := Recover(v.Digest, v.Signature)
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	if addr.Hex() != v.Signer {
		t.Errorf("signature recovers to %s, vector signer %s", addr.Hex(), v.Signer)
	}
	sig, err := SignDigest(key, v.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sig, v.Signature) {
		t.Errorf("signature: Go %x, vector %x (signing must be deterministic, RFC 6979)", sig, []byte(v.Signature))
	}
}
