package consensus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/internal/strictjson"
)

// MaxTotalStake bounds the sum of all stakes so that every sum of stakes in a
// tally fits in a uint64 with room to spare.
const MaxTotalStake = uint64(1) << 62

// MaxValidators bounds the size of a validator set.
const MaxValidators = 1024

// Errors of genesis validation.
var (
	ErrNoValidators       = errors.New("genesis: validator set is empty")
	ErrTooManyValidators  = errors.New("genesis: too many validators")
	ErrDuplicateAddress   = errors.New("genesis: duplicate validator address")
	ErrZeroStake          = errors.New("genesis: validator has zero stake")
	ErrStakeOverflow      = errors.New("genesis: total stake exceeds the maximum")
	ErrZeroAddress        = errors.New("genesis: validator has the zero address")
	ErrZeroNetworkID      = errors.New("genesis: network_id must be positive")
	ErrEmptyValidatorName = errors.New("genesis: validator has no name")
)

// Validator is one member of the validator set.
type Validator struct {
	Name    string         `json:"name"`
	Address common.Address `json:"address"`
	Stake   uint64         `json:"stake"`
}

// Genesis is the content of genesis.json: the network id, the network's
// security policy and the validators. A genesis without a policy has
// DefaultPolicy.
type Genesis struct {
	NetworkID  uint64      `json:"network_id"`
	Policy     *Policy     `json:"policy,omitempty"`
	Validators []Validator `json:"validators"`
}

// EffectivePolicy is the genesis policy, or DefaultPolicy when it states
// none.
func (g *Genesis) EffectivePolicy() Policy {
	if g.Policy == nil {
		return DefaultPolicy()
	}
	p := *g.Policy
	p.QuorumKinds = slices.Clone(p.QuorumKinds)
	return p
}

// ParseGenesis decodes and validates genesis JSON. Unknown fields are errors.
func ParseGenesis(data []byte) (*Genesis, error) {
	var g Genesis
	// MaxValidators validators with names of a few hundred bytes fit
	// well within the limit.
	if err := strictjson.Decode(data, &g, 4<<20); err != nil {
		return nil, fmt.Errorf("genesis: decode: %w", err)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &g, nil
}

// LoadGenesis reads and validates a genesis file.
func LoadGenesis(path string) (*Genesis, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	return ParseGenesis(data)
}

// Validate checks the set: non-empty, at most MaxValidators, distinct non-zero
// addresses, named validators, positive stakes whose total fits
// MaxTotalStake; and the policy (Policy.Validate), whose least stake per
// claim must not exceed the total stake.
func (g *Genesis) Validate() error {
	if g.NetworkID == 0 {
		return ErrZeroNetworkID
	}
	p := g.EffectivePolicy()
	if err := p.Validate(); err != nil {
		return err
	}
	if len(g.Validators) == 0 {
		return ErrNoValidators
	}
	if len(g.Validators) > MaxValidators {
		return fmt.Errorf("%w: %d > %d", ErrTooManyValidators, len(g.Validators), MaxValidators)
	}
	seen := make(map[common.Address]string, len(g.Validators))
	var total uint64
	for _, v := range g.Validators {
		if v.Name == "" {
			return fmt.Errorf("%w (address %s)", ErrEmptyValidatorName, v.Address.Hex())
		}
		if v.Address == (common.Address{}) {
			return fmt.Errorf("%w (%s)", ErrZeroAddress, v.Name)
		}
		if other, ok := seen[v.Address]; ok {
			return fmt.Errorf("%w: %s (%s and %s)", ErrDuplicateAddress, v.Address.Hex(), other, v.Name)
		}
		seen[v.Address] = v.Name
		if v.Stake == 0 {
			return fmt.Errorf("%w (%s)", ErrZeroStake, v.Name)
		}
		if v.Stake > MaxTotalStake || total > MaxTotalStake-v.Stake {
			return fmt.Errorf("%w of %d", ErrStakeOverflow, MaxTotalStake)
		}
		total += v.Stake
	}
	if p.MinClaimStake > total {
		return fmt.Errorf("%w: min_claim_stake %d exceeds the total stake %d", ErrBadPolicy, p.MinClaimStake, total)
	}
	return nil
}

// Hash commits to the network id, the policy in force (DefaultPolicy when
// the file states none) and the validator set (sorted by address, each with
// name and stake):
//
//	keccak256("verity.genesis.v2" || u64 network_id ||
//	          u64 f.num || u64 f.den || u8 kinds (1 stake | 2 count) ||
//	          u64 min_stake_quorum.num || u64 min_stake_quorum.den || u64 min_claim_stake ||
//	          u32 count ||
//	          for each validator by address: address || u64 stake || u32 len(name) || name)
//
// Integers are big-endian. The order of validators in the file does not
// matter, nor the order of quorum kinds.
func (g *Genesis) Hash() common.Hash {
	vs := sortedValidators(g.Validators)
	var buf bytes.Buffer
	buf.WriteString("verity.genesis.v2")
	buf.Write(binary.BigEndian.AppendUint64(nil, g.NetworkID))
	p := g.EffectivePolicy()
	buf.Write(p.appendHash(nil))
	buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(vs))))
	for _, v := range vs {
		buf.Write(v.Address[:])
		buf.Write(binary.BigEndian.AppendUint64(nil, v.Stake))
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(v.Name))))
		buf.WriteString(v.Name)
	}
	return crypto.Keccak256Hash(buf.Bytes())
}

// ValidatorSet validates g and returns its validator set.
func (g *Genesis) ValidatorSet() (*ValidatorSet, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	vs := sortedValidators(g.Validators)
	set := &ValidatorSet{
		networkID:  g.NetworkID,
		policy:     g.EffectivePolicy(),
		validators: vs,
		index:      make(map[common.Address]int, len(vs)),
		hash:       g.Hash(),
	}
	for i, v := range vs {
		set.index[v.Address] = i
		set.total += v.Stake
	}
	return set, nil
}

func sortedValidators(in []Validator) []Validator {
	vs := slices.Clone(in)
	slices.SortFunc(vs, func(a, b Validator) int { return bytes.Compare(a.Address[:], b.Address[:]) })
	return vs
}

// ValidatorSet is an immutable, validated validator set sorted by address.
type ValidatorSet struct {
	networkID  uint64
	policy     Policy
	validators []Validator
	index      map[common.Address]int
	total      uint64
	hash       common.Hash
	// full holds, by claim count, the assignment of a job in which every
	// validator judges every claim (Assign): it depends on nothing else,
	// so a node computes it once, not three times per job.
	full [maxSharedAssignment + 1]atomic.Pointer[Assignment]
}

// NetworkID is the network (EIP-712 chain) id.
func (s *ValidatorSet) NetworkID() uint64 { return s.networkID }

// GenesisHash is the hash of the genesis this set came from.
func (s *ValidatorSet) GenesisHash() common.Hash { return s.hash }

// Policy is the network's security policy.
func (s *ValidatorSet) Policy() Policy {
	p := s.policy
	p.QuorumKinds = slices.Clone(p.QuorumKinds)
	return p
}

// Len is the number of validators.
func (s *ValidatorSet) Len() int { return len(s.validators) }

// TotalStake is the sum of all stakes.
func (s *ValidatorSet) TotalStake() uint64 { return s.total }

// Validators returns a copy of the validators, sorted by address.
func (s *ValidatorSet) Validators() []Validator { return slices.Clone(s.validators) }

// At returns the i-th validator in address order.
func (s *ValidatorSet) At(i int) Validator { return s.validators[i] }

// Lookup returns the position and record of a validator.
func (s *ValidatorSet) Lookup(addr common.Address) (int, Validator, bool) {
	i, ok := s.index[addr]
	if !ok {
		return -1, Validator{}, false
	}
	return i, s.validators[i], true
}

// Genesis returns the genesis document of this set (validators by address).
func (s *ValidatorSet) Genesis() *Genesis {
	p := s.Policy()
	return &Genesis{NetworkID: s.networkID, Policy: &p, Validators: s.Validators()}
}
