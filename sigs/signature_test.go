package sigs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

var secp256k1N = crypto.S256().Params().N

func sampleBallot() BallotData {
	return BallotData{
		JobID:        vecHash("job"),
		OutputHash:   vecHash("output"),
		ClaimsRoot:   vecHash("root"),
		ClaimIndexes: []uint32{0, 2, 5},
		Verdicts:     []uint8{1, 2, 0},
	}
}

func signSample(t testing.TB, key int) (common.Hash, []byte, common.Address) {
	t.Helper()
	k := testKey(t, key)
	d := BallotDigest(7, sampleBallot())
	sig, err := SignDigest(k, d)
	if err != nil {
		t.Fatal(err)
	}
	return d, sig, crypto.PubkeyToAddress(k.PublicKey)
}

func TestRecoverValid(t *testing.T) {
	for i := range 4 {
		d, sig, addr := signSample(t, i)
		if len(sig) != SignatureLength {
			t.Fatalf("signature is %d bytes", len(sig))
		}
		if v := sig[64]; v != 27 && v != 28 {
			t.Fatalf("signature v = %d", v)
		}
		if err := CheckSignature(sig); err != nil {
			t.Fatal(err)
		}
		got, err := Recover(d, sig)
		if err != nil {
			t.Fatal(err)
		}
		if got != addr {
			t.Fatalf("key %d: recovered %s, want %s", i, got.Hex(), addr.Hex())
		}
	}
}

func TestSignerInterface(t *testing.T) {
	k := testKey(t, 2)
	s := NewKeySigner(k)
	if s.Address() != crypto.PubkeyToAddress(k.PublicKey) {
		t.Fatal("KeySigner address differs from the key's")
	}
	d := BallotDigest(1, sampleBallot())
	sig, err := s.SignDigest(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Recover(d, sig); err != nil || got != s.Address() {
		t.Fatalf("recovered %s, %v", got.Hex(), err)
	}
}

func TestRecoverRejects(t *testing.T) {
	d, sig, _ := signSample(t, 0)
	mod := func(f func(c []byte)) []byte {
		c := bytes.Clone(sig)
		f(c)
		return c
	}
	setS := func(c []byte, s *big.Int) { s.FillBytes(c[32:64]) }
	halfN := new(big.Int).Rsh(secp256k1N, 1)

	// The high-s twin of a valid signature: s' = n - s with the other
	// recovery id. Plain ecrecover accepts it and recovers the same signer;
	// Recover must refuse it.
	highS := mod(func(c []byte) {
		setS(c, new(big.Int).Sub(secp256k1N, new(big.Int).SetBytes(c[32:64])))
		c[64] = 27 + 28 - c[64]
	})
	raw := bytes.Clone(highS)
	raw[64] -= 27
	if pub, err := crypto.Ecrecover(d[:], raw); err != nil {
		t.Fatalf("the high-s twin should recover without the low-s rule: %v", err)
	} else if got, want := common.BytesToAddress(crypto.Keccak256(pub[1:])[12:]), crypto.PubkeyToAddress(testKey(t, 0).PublicKey); got != want {
		t.Fatalf("the high-s twin recovers to %s without the rule, want %s", got.Hex(), want.Hex())
	}

	tests := []struct {
		name string
		sig  []byte
		want error
	}{
		{"nil", nil, ErrSignatureLength},
		{"empty", []byte{}, ErrSignatureLength},
		{"64 bytes", sig[:64], ErrSignatureLength},
		{"66 bytes", append(bytes.Clone(sig), 27), ErrSignatureLength},
		{"130 bytes", append(bytes.Clone(sig), sig...), ErrSignatureLength},
		{"v = 0", mod(func(c []byte) { c[64] = 0 }), ErrSignatureV},
		{"v = 1", mod(func(c []byte) { c[64] = 1 }), ErrSignatureV},
		{"v = 29", mod(func(c []byte) { c[64] = 29 }), ErrSignatureV},
		{"v = 255", mod(func(c []byte) { c[64] = 255 }), ErrSignatureV},
		{"high s", highS, ErrSignatureHighS},
		{"s = n/2 + 1", mod(func(c []byte) { setS(c, new(big.Int).Add(halfN, big.NewInt(1))) }), ErrSignatureHighS},
		{"s = n - 1", mod(func(c []byte) { setS(c, new(big.Int).Sub(secp256k1N, big.NewInt(1))) }), ErrSignatureHighS},
		{"r = 0", mod(func(c []byte) { clear(c[:32]) }), ErrSignatureValues},
		{"s = 0", mod(func(c []byte) { clear(c[32:64]) }), ErrSignatureValues},
		{"r = n", mod(func(c []byte) { secp256k1N.FillBytes(c[:32]) }), ErrSignatureValues},
		{"r = n + 1", mod(func(c []byte) { new(big.Int).Add(secp256k1N, big.NewInt(1)).FillBytes(c[:32]) }), ErrSignatureValues},
		{"r = 2^256 - 1", mod(func(c []byte) { copy(c[:32], bytes.Repeat([]byte{0xff}, 32)) }), ErrSignatureValues},
		{"s = n", mod(func(c []byte) { setS(c, secp256k1N) }), ErrSignatureValues},
		{"s = 2^256 - 1", mod(func(c []byte) { copy(c[32:64], bytes.Repeat([]byte{0xff}, 32)) }), ErrSignatureValues},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckSignature(tc.sig); !errors.Is(err, tc.want) {
				t.Errorf("CheckSignature: got %v, want %v", err, tc.want)
			}
			addr, err := Recover(d, tc.sig)
			if !errors.Is(err, tc.want) {
				t.Errorf("Recover: got %s, %v; want %v", addr.Hex(), err, tc.want)
			}
			if addr != (common.Address{}) {
				t.Errorf("Recover returned address %s with an error", addr.Hex())
			}
		})
	}
}

// TestRecoverNoPoint: r in range but not the x coordinate of any curve point
// passes the shape check and must fail recovery with ErrRecover.
func TestRecoverNoPoint(t *testing.T) {
	d, sig, _ := signSample(t, 0)
	p := crypto.S256().Params().P
	b := crypto.S256().Params().B
	c := bytes.Clone(sig)
	for x := int64(1); ; x++ {
		// y^2 = x^3 + 7 has no solution when the right side is a non-residue.
		rhs := new(big.Int).Exp(big.NewInt(x), big.NewInt(3), p)
		rhs.Add(rhs, b).Mod(rhs, p)
		if big.Jacobi(rhs, p) == -1 {
			big.NewInt(x).FillBytes(c[:32])
			break
		}
	}
	if err := CheckSignature(c); err != nil {
		t.Fatalf("shape check: %v", err)
	}
	if addr, err := Recover(d, c); !errors.Is(err, ErrRecover) {
		t.Fatalf("got %s, %v; want ErrRecover", addr.Hex(), err)
	}
}

func TestSignatureBindsKeyAndDigest(t *testing.T) {
	keys := []int{0, 1, 2, 3}
	addrs := make([]common.Address, len(keys))
	for i, k := range keys {
		addrs[i] = crypto.PubkeyToAddress(testKey(t, k).PublicKey)
	}
	other := sampleBallot()
	other.Verdicts = []uint8{2, 2, 0}
	for i := range keys {
		d, sig, _ := signSample(t, keys[i])
		got, err := Recover(d, sig)
		if err != nil {
			t.Fatal(err)
		}
		for j := range keys {
			if j != i && got == addrs[j] {
				t.Fatalf("a signature by key %d recovers to key %d", i, j)
			}
		}
		// The same signature over another digest names some other key,
		// never the signer.
		if got2, err := Recover(BallotDigest(7, other), sig); err == nil && got2 == addrs[i] {
			t.Fatalf("key %d's signature also verifies for another ballot", i)
		}
		if got2, err := Recover(BallotDigest(1, sampleBallot()), sig); err == nil && got2 == addrs[i] {
			t.Fatalf("key %d's signature also verifies on another network", i)
		}
	}
}

func TestBallotDigestCoversEveryField(t *testing.T) {
	const chain = 7
	base := sampleBallot()
	baseDigest := BallotDigest(chain, base)
	flip := func(h common.Hash) common.Hash { h[31] ^= 1; return h }
	type variant struct {
		name  string
		chain uint64
		b     BallotData
	}
	clone := func(f func(b *BallotData)) BallotData {
		b := base
		b.ClaimIndexes = append([]uint32(nil), base.ClaimIndexes...)
		b.Verdicts = append([]uint8(nil), base.Verdicts...)
		f(&b)
		return b
	}
	variants := []variant{
		{"chain id 1", 1, base},
		{"chain id 8", 8, base},
		{"chain id max", math.MaxUint64, base},
		{"job id", chain, clone(func(b *BallotData) { b.JobID = flip(b.JobID) })},
		{"output hash", chain, clone(func(b *BallotData) { b.OutputHash = flip(b.OutputHash) })},
		{"claims root", chain, clone(func(b *BallotData) { b.ClaimsRoot = flip(b.ClaimsRoot) })},
		{"job id and output hash swapped", chain, clone(func(b *BallotData) { b.JobID, b.OutputHash = b.OutputHash, b.JobID })},
		{"one more claim", chain, clone(func(b *BallotData) {
			b.ClaimIndexes = append(b.ClaimIndexes, 6)
			b.Verdicts = append(b.Verdicts, 1)
		})},
		{"one claim fewer", chain, clone(func(b *BallotData) { b.ClaimIndexes = b.ClaimIndexes[:2]; b.Verdicts = b.Verdicts[:2] })},
		{"no claims", chain, clone(func(b *BallotData) { b.ClaimIndexes = nil; b.Verdicts = nil })},
		{"indexes and verdicts swapped", chain, clone(func(b *BallotData) {
			b.ClaimIndexes = []uint32{1, 2, 0}
			b.Verdicts = []uint8{0, 2, 5}
		})},
	}
	for i := range base.ClaimIndexes {
		variants = append(variants, variant{fmt.Sprintf("index %d", i), chain, clone(func(b *BallotData) { b.ClaimIndexes[i]++ })})
		variants = append(variants, variant{fmt.Sprintf("index %d max", i), chain, clone(func(b *BallotData) { b.ClaimIndexes[i] = math.MaxUint32 })})
		for v := range uint8(3) {
			if v != base.Verdicts[i] {
				variants = append(variants, variant{fmt.Sprintf("verdict %d to %d", i, v), chain, clone(func(b *BallotData) { b.Verdicts[i] = v })})
			}
		}
	}
	seen := map[common.Hash]string{baseDigest: "base"}
	for _, v := range variants {
		d := BallotDigest(v.chain, v.b)
		if prev, ok := seen[d]; ok {
			t.Errorf("%s: digest equals that of %s", v.name, prev)
		}
		seen[d] = v.name
	}
	// Nil and empty arrays encode the same (both are the empty array).
	empty := clone(func(b *BallotData) { b.ClaimIndexes = []uint32{}; b.Verdicts = []uint8{} })
	none := clone(func(b *BallotData) { b.ClaimIndexes = nil; b.Verdicts = nil })
	if BallotDigest(chain, empty) != BallotDigest(chain, none) {
		t.Error("nil and empty arrays give different digests")
	}
	if BallotDigest(chain, base) != baseDigest {
		t.Error("BallotDigest is not deterministic")
	}
}

func TestJobDigestCoversEveryField(t *testing.T) {
	base := JobData{JobID: vecHash("j"), OutputHash: vecHash("o"), ClaimsRoot: vecHash("r"), ClaimCount: 3, Deadline: 1767225600000}
	flip := func(h common.Hash) common.Hash { h[0] ^= 0x80; return h }
	variants := map[string]struct {
		chain uint64
		j     JobData
	}{
		"chain":       {8, base},
		"job id":      {7, JobData{flip(base.JobID), base.OutputHash, base.ClaimsRoot, base.ClaimCount, base.Deadline, base.Resend}},
		"output hash": {7, JobData{base.JobID, flip(base.OutputHash), base.ClaimsRoot, base.ClaimCount, base.Deadline, base.Resend}},
		"claims root": {7, JobData{base.JobID, base.OutputHash, flip(base.ClaimsRoot), base.ClaimCount, base.Deadline, base.Resend}},
		"claim count": {7, JobData{base.JobID, base.OutputHash, base.ClaimsRoot, 4, base.Deadline, base.Resend}},
		"deadline":    {7, JobData{base.JobID, base.OutputHash, base.ClaimsRoot, base.ClaimCount, base.Deadline + 1, base.Resend}},
		"resend":      {7, JobData{base.JobID, base.OutputHash, base.ClaimsRoot, base.ClaimCount, base.Deadline, base.Resend + 1}},
	}
	seen := map[common.Hash]string{JobDigest(7, base): "base"}
	for name, v := range variants {
		d := JobDigest(v.chain, v.j)
		if prev, ok := seen[d]; ok {
			t.Errorf("%s: digest equals that of %s", name, prev)
		}
		seen[d] = name
	}
	// A job and a ballot never share a digest: the type hashes differ.
	if JobStructHash(base) == BallotStructHash(BallotData{JobID: base.JobID, OutputHash: base.OutputHash, ClaimsRoot: base.ClaimsRoot}) {
		t.Error("job and ballot struct hashes collide")
	}
}

func FuzzRecover(f *testing.F) {
	d, sig, _ := signSample(f, 0)
	f.Add(d[:], sig)
	f.Add(d[:], sig[:64])
	f.Add([]byte{}, []byte{})
	high := bytes.Clone(sig)
	new(big.Int).Sub(secp256k1N, new(big.Int).SetBytes(sig[32:64])).FillBytes(high[32:64])
	f.Add(d[:], high)
	zero := make([]byte, SignatureLength)
	zero[64] = 27
	f.Add(d[:], zero)
	f.Fuzz(func(t *testing.T, digest, sig []byte) {
		var h common.Hash
		copy(h[:], digest)
		shapeErr := CheckSignature(sig)
		addr, err := Recover(h, sig)
		if shapeErr != nil && err == nil {
			t.Fatalf("Recover accepted a signature CheckSignature refuses: %v", shapeErr)
		}
		if err != nil {
			if addr != (common.Address{}) {
				t.Fatalf("address %s returned with error %v", addr.Hex(), err)
			}
			return
		}
		// Anything accepted is 65 bytes, v in {27, 28}, low-s, and agrees
		// with go-ethereum's own recovery.
		if len(sig) != SignatureLength || (sig[64] != 27 && sig[64] != 28) {
			t.Fatalf("accepted signature of shape %d bytes, v=%d", len(sig), sig[len(sig)-1])
		}
		raw := bytes.Clone(sig)
		raw[64] -= 27
		pub, gerr := crypto.SigToPub(h[:], raw)
		if gerr != nil {
			t.Fatalf("go-ethereum refuses what Recover accepted: %v", gerr)
		}
		if crypto.PubkeyToAddress(*pub) != addr {
			t.Fatalf("Recover gives %s, go-ethereum %s", addr.Hex(), crypto.PubkeyToAddress(*pub).Hex())
		}
	})
}

func BenchmarkBallotDigest(b *testing.B) {
	ballot := BallotData{JobID: vecHash("j"), OutputHash: vecHash("o"), ClaimsRoot: vecHash("r")}
	for i := range 8 {
		ballot.ClaimIndexes = append(ballot.ClaimIndexes, uint32(i))
		ballot.Verdicts = append(ballot.Verdicts, uint8(i%3))
	}
	b.ReportAllocs()
	for b.Loop() {
		BallotDigest(7, ballot)
	}
}

func BenchmarkSign(b *testing.B) {
	k := testKey(b, 0)
	d := BallotDigest(7, sampleBallot())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignDigest(k, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecover is the floor for certificate verification: one Recover
// per ballot.
func BenchmarkRecover(b *testing.B) {
	d, sig, want := signSample(b, 0)
	b.ReportAllocs()
	for b.Loop() {
		got, err := Recover(d, sig)
		if err != nil || got != want {
			b.Fatalf("recovered %s, %v", got.Hex(), err)
		}
	}
}

func TestRecoverPublicKey(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	digest := crypto.Keccak256Hash([]byte("x"))
	sig, err := SignDigest(key, digest)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := RecoverPublicKey(digest, sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("recovered %v, %v", pub, err)
	}
	if _, err := RecoverPublicKey(digest, sig[:64]); !errors.Is(err, ErrSignatureLength) {
		t.Fatalf("short signature: %v", err)
	}
}

// DomainSeparator keeps the last separator it computed: networks asked
// for in turn, from many goroutines, each get their own.
func TestDomainSeparatorPerNetwork(t *testing.T) {
	want := map[uint64]common.Hash{}
	for id := range uint64(4) {
		want[id] = domainSeparator(id)
	}
	if want[1] == want[2] {
		t.Fatal("two networks share a separator")
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				id := uint64((g + i) % 4)
				if got := DomainSeparator(id); got != want[id] {
					t.Errorf("network %d: %s, want %s", id, got.Hex(), want[id].Hex())
					return
				}
			}
		})
	}
	wg.Wait()
}
