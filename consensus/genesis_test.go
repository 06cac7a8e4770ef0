package consensus

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func genesisJSON(networkID string, validators ...string) string {
	return fmt.Sprintf(`{"network_id":%s,"validators":[%s]}`, networkID, strings.Join(validators, ","))
}

func validatorJSON(name string, addr byte, stake string) string {
	return fmt.Sprintf(`{"name":%q,"address":"%s","stake":%s}`, name, common.Address{19: addr}.Hex(), stake)
}

func TestParseGenesis(t *testing.T) {
	a := validatorJSON("a", 1, "10")
	b := validatorJSON("b", 2, "20")
	tests := []struct {
		name    string
		json    string
		wantErr error  // sentinel, when the failure has one
		wantSub string // substring of the message otherwise
	}{
		{name: "valid", json: genesisJSON("7", a, b)},
		{name: "empty set", json: genesisJSON("7"), wantErr: ErrNoValidators},
		{name: "null validators", json: `{"network_id":7,"validators":null}`, wantErr: ErrNoValidators},
		{name: "duplicate address", json: genesisJSON("7", a, validatorJSON("c", 1, "5")), wantErr: ErrDuplicateAddress},
		{name: "zero stake", json: genesisJSON("7", a, validatorJSON("c", 3, "0")), wantErr: ErrZeroStake},
		{name: "zero address", json: genesisJSON("7", a, validatorJSON("c", 0, "5")), wantErr: ErrZeroAddress},
		{name: "zero network id", json: genesisJSON("0", a), wantErr: ErrZeroNetworkID},
		{name: "missing network id", json: `{"validators":[` + a + `]}`, wantErr: ErrZeroNetworkID},
		{name: "empty name", json: genesisJSON("7", validatorJSON("", 1, "1")), wantErr: ErrEmptyValidatorName},
		{name: "one stake above max total", json: genesisJSON("7", validatorJSON("a", 1, fmt.Sprint(MaxTotalStake+1))), wantErr: ErrStakeOverflow},
		{name: "stake exactly max total", json: genesisJSON("7", validatorJSON("a", 1, fmt.Sprint(MaxTotalStake)))},
		{name: "sum one above max total", json: genesisJSON("7", validatorJSON("a", 1, fmt.Sprint(MaxTotalStake-1)), validatorJSON("b", 2, "2")), wantErr: ErrStakeOverflow},
		{name: "sum wraps uint64", json: genesisJSON("7", validatorJSON("a", 1, fmt.Sprint(uint64(math.MaxUint64))), validatorJSON("b", 2, "1")), wantErr: ErrStakeOverflow},
		{name: "two halves wrap to zero", json: genesisJSON("7", validatorJSON("a", 1, fmt.Sprint(uint64(1)<<63)), validatorJSON("b", 2, fmt.Sprint(uint64(1)<<63))), wantErr: ErrStakeOverflow},
		{name: "stake above uint64", json: genesisJSON("7", validatorJSON("a", 1, "18446744073709551616")), wantSub: "genesis: decode"},
		{name: "negative stake", json: genesisJSON("7", validatorJSON("a", 1, "-1")), wantSub: "genesis: decode"},
		{name: "unknown top-level field", json: `{"network_id":7,"chain":"x","validators":[` + a + `]}`, wantSub: `unknown key "chain"`},
		{name: "unknown validator field", json: genesisJSON("7", `{"name":"a","address":"0x0000000000000000000000000000000000000001","stake":1,"power":2}`), wantSub: `unknown key "power" in /validators/0`},
		{name: "bad address", json: genesisJSON("7", `{"name":"a","address":"0x01","stake":1}`), wantSub: "genesis: decode"},
		{name: "trailing object", json: genesisJSON("7", a) + `{}`, wantSub: "trailing data"},
		{name: "trailing brace", json: genesisJSON("7", a) + ` }`, wantSub: "trailing data"},
		{name: "trailing garbage", json: genesisJSON("7", a) + ` x`, wantSub: "trailing data"},
		{name: "trailing white space", json: genesisJSON("7", a) + " \n\t"},
		{name: "not json", json: `network_id = 7`, wantSub: "genesis: decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGenesis([]byte(tt.json))
			switch {
			case tt.wantErr == nil && tt.wantSub == "":
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if g.NetworkID == 0 || len(g.Validators) == 0 {
					t.Fatalf("decoded %+v", g)
				}
			case err == nil:
				t.Fatal("accepted")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("error %q is not %q", err, tt.wantErr)
			case !strings.Contains(err.Error(), tt.wantSub):
				t.Fatalf("error %q does not contain %q", err, tt.wantSub)
			}
		})
	}
}

func TestGenesisTooManyValidators(t *testing.T) {
	g := &Genesis{NetworkID: 1}
	for i := range MaxValidators + 1 {
		n := i + 1
		g.Validators = append(g.Validators, Validator{Name: "v", Address: common.Address{18: byte(n >> 8), 19: byte(n)}, Stake: 1})
	}
	if err := g.Validate(); !errors.Is(err, ErrTooManyValidators) {
		t.Fatalf("got %v, want %v", err, ErrTooManyValidators)
	}
	g.Validators = g.Validators[:MaxValidators]
	if err := g.Validate(); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
}

func TestGenesisHashIndependentOfOrder(t *testing.T) {
	f := newFixture(t, 7, 10, 20, 30, 40)
	g := f.genesis
	rev := &Genesis{NetworkID: g.NetworkID, Policy: g.Policy}
	for i := len(g.Validators) - 1; i >= 0; i-- {
		rev.Validators = append(rev.Validators, g.Validators[i])
	}
	if g.Hash() != rev.Hash() {
		t.Fatal("hash depends on validator order")
	}
	if g.Hash() != f.set.GenesisHash() || f.set.Genesis().Hash() != g.Hash() {
		t.Fatal("set hash differs from genesis hash")
	}
}

func TestGenesisHashChangesWithEveryField(t *testing.T) {
	base := func() *Genesis { return newFixture(t, 7, 10, 20, 30).genesis }
	h := base().Hash()
	tests := []struct {
		name   string
		mutate func(g *Genesis)
	}{
		{"network id", func(g *Genesis) { g.NetworkID++ }},
		{"a stake", func(g *Genesis) { g.Validators[1].Stake++ }},
		{"a name", func(g *Genesis) { g.Validators[2].Name += "x" }},
		{"a name boundary", func(g *Genesis) { g.Validators[0].Name, g.Validators[1].Name = "v0v", "1" }},
		{"an address", func(g *Genesis) { g.Validators[0].Address[5] ^= 1 }},
		{"a validator removed", func(g *Genesis) { g.Validators = g.Validators[:2] }},
		{"a validator added", func(g *Genesis) {
			g.Validators = append(g.Validators, Validator{Name: "x", Address: common.Address{1}, Stake: 1})
		}},
		{"stakes swapped", func(g *Genesis) {
			g.Validators[0].Stake, g.Validators[1].Stake = g.Validators[1].Stake, g.Validators[0].Stake
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := base()
			tt.mutate(g)
			if g.Hash() == h {
				t.Fatal("hash unchanged")
			}
		})
	}
}

func TestValidatorSetAccessors(t *testing.T) {
	f := newFixture(t, 9, 5, 6, 7)
	s := f.set
	if s.NetworkID() != 9 || s.Len() != 3 || s.TotalStake() != 18 {
		t.Fatalf("network %d len %d total %d", s.NetworkID(), s.Len(), s.TotalStake())
	}
	for i := 1; i < s.Len(); i++ {
		if a, b := s.At(i-1).Address, s.At(i).Address; string(a[:]) >= string(b[:]) {
			t.Fatal("validators not sorted by address")
		}
	}
	pos, v, ok := s.Lookup(s.At(2).Address)
	if !ok || pos != 2 || v != s.At(2) {
		t.Fatalf("lookup: %d %v %v", pos, v, ok)
	}
	if _, _, ok := s.Lookup(common.Address{1}); ok {
		t.Fatal("lookup of a stranger succeeded")
	}
	vs := s.Validators()
	vs[0].Stake = 1000
	if s.At(0).Stake == 1000 {
		t.Fatal("Validators does not return a copy")
	}
	bad := &Genesis{NetworkID: 1}
	if _, err := bad.ValidatorSet(); !errors.Is(err, ErrNoValidators) {
		t.Fatalf("invalid genesis gave a set: %v", err)
	}
}
