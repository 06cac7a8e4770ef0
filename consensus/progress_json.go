package consensus

import (
	"slices"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/internal/jsonw"
)

// A gateway writes a claim's progress into the event of every ballot it
// counts (ballot.attached) and of every claim it decides (claim.decided):
// several per job, on the path of every certificate. AppendJSON writes it
// without reflection.

// AppendJSON appends p's JSON to dst: byte for byte what encoding/json's
// Marshal writes for p (TestClaimProgressJSON).
func (p *ClaimProgress) AppendJSON(dst []byte) []byte {
	dst = slices.Grow(dst, p.JSONSize())
	dst = strconv.AppendUint(append(dst, `{"index":`...), uint64(p.Index), 10)
	dst = jsonw.AppendStringHTML(append(dst, `,"outcome":`...), string(p.Outcome))
	for _, f := range [...]struct {
		name string
		v    uint64
	}{
		{`,"stake_true":`, p.StakeTrue}, {`,"stake_false":`, p.StakeFalse},
		{`,"stake_abstain":`, p.StakeAbstain}, {`,"stake_assigned":`, p.StakeAssigned},
		{`,"needed":`, p.Needed},
	} {
		dst = strconv.AppendUint(append(dst, f.name...), f.v, 10)
	}
	dst = jsonw.AppendStringHTML(append(dst, `,"needed_unit":`...), p.NeededUnit)
	for _, f := range [...]struct {
		name string
		v    uint64
	}{
		{`,"validators_assigned":`, p.ValidatorsAssigned}, {`,"validators_true":`, p.ValidatorsTrue},
		{`,"validators_false":`, p.ValidatorsFalse}, {`,"validators_abstain":`, p.ValidatorsAbstain},
	} {
		dst = strconv.AppendUint(append(dst, f.name...), f.v, 10)
	}
	dst = AppendAddresses(append(dst, `,"voters":`...), p.Voters)
	return append(dst, '}')
}

// JSONSize is a little over the length of p's JSON when its text needs no
// escape: room to grow a buffer once.
func (p *ClaimProgress) JSONSize() int {
	return 420 + len(p.Outcome) + len(p.NeededUnit) + 45*len(p.Voters)
}

// AppendProgresses appends a list of progress as encoding/json writes it:
// null for a nil slice.
func AppendProgresses(dst []byte, ps []ClaimProgress) []byte {
	return appendList(dst, ps, func(dst []byte, p *ClaimProgress) []byte { return p.AppendJSON(dst) })
}

// AppendAddresses appends a list of addresses as encoding/json writes it:
// null for a nil slice.
func AppendAddresses(dst []byte, as []common.Address) []byte {
	return appendList(dst, as, func(dst []byte, a *common.Address) []byte { return appendHex(dst, a[:]) })
}

// AppendUints appends a list of numbers as encoding/json writes it: null
// for a nil slice.
func AppendUints[T ~uint8 | ~uint32](dst []byte, xs []T) []byte { return appendUints(dst, xs) }
