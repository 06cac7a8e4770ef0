package p2p

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/internal/fifo"
)

// Errors about keys and peer ids. They are wrapped with detail; test with
// errors.Is.
var (
	ErrNoKey      = errors.New("no key")
	ErrKeyCurve   = errors.New("key is not on secp256k1")
	ErrPeerIDType = errors.New("peer id does not name a secp256k1 key")
)

// libp2pPrivateKey converts a go-ethereum secp256k1 private key into the
// libp2p private key of the same scalar.
func libp2pPrivateKey(key *ecdsa.PrivateKey) (crypto.PrivKey, error) {
	if key == nil || key.D == nil {
		return nil, ErrNoKey
	}
	if key.Curve != ethcrypto.S256() {
		return nil, ErrKeyCurve
	}
	priv, err := crypto.UnmarshalSecp256k1PrivateKey(ethcrypto.FromECDSA(key))
	if err != nil {
		return nil, fmt.Errorf("convert private key: %w", err)
	}
	return priv, nil
}

// Identity is the libp2p identity of a validator key: the libp2p private
// key of the same secp256k1 scalar, whose peer id is PeerIDFromKey(key). A
// node derives it once, when it is built, and gives it to Config.Identity.
func Identity(key *ecdsa.PrivateKey) (crypto.PrivKey, error) {
	return libp2pPrivateKey(key)
}

// libp2pPublicKey converts a go-ethereum secp256k1 public key into the libp2p
// public key of the same point.
func libp2pPublicKey(pub *ecdsa.PublicKey) (crypto.PubKey, error) {
	if pub == nil || pub.X == nil || pub.Y == nil {
		return nil, ErrNoKey
	}
	if pub.Curve != ethcrypto.S256() || !pub.Curve.IsOnCurve(pub.X, pub.Y) {
		return nil, ErrKeyCurve
	}
	pk, err := crypto.UnmarshalSecp256k1PublicKey(ethcrypto.CompressPubkey(pub))
	if err != nil {
		return nil, fmt.Errorf("convert public key: %w", err)
	}
	return pk, nil
}

// PeerIDFromKey returns the libp2p peer id of a validator key: the id a node
// started with this key has.
func PeerIDFromKey(key *ecdsa.PrivateKey) (peer.ID, error) {
	if key == nil {
		return "", ErrNoKey
	}
	return PeerIDFromPublicKey(&key.PublicKey)
}

// PeerIDFromPublicKey returns the libp2p peer id of a validator public key.
// A secp256k1 public key is short enough to be embedded in its peer id
// (identity multihash), so AddressFromPeerID can invert this.
func PeerIDFromPublicKey(pub *ecdsa.PublicKey) (peer.ID, error) {
	if pub == nil || pub.X == nil || pub.Y == nil {
		return "", ErrNoKey
	}
	// A node derives the ids of the same few keys (its peers', a job's
	// gateway's) over and over; the conversion decompresses the point.
	var k [64]byte
	keyed := pub.Curve == ethcrypto.S256() && pub.X.BitLen() <= 256 && pub.Y.BitLen() <= 256
	if keyed {
		pub.X.FillBytes(k[:32])
		pub.Y.FillBytes(k[32:])
		if id, ok := peerIDs.get(k); ok {
			return id, nil
		}
	}
	pk, err := libp2pPublicKey(pub)
	if err != nil {
		return "", err
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		return "", fmt.Errorf("derive peer id: %w", err)
	}
	if keyed {
		peerIDs.put(k, id)
	}
	return id, nil
}

// peerIDs remembers the peer ids of the most recent keys PeerIDFromPublicKey
// converted, by the key's coordinates.
var peerIDs = peerIDCache{ids: fifo.New[[64]byte, peer.ID](4096)}

type peerIDCache struct {
	mu  sync.Mutex
	ids *fifo.Map[[64]byte, peer.ID]
}

func (c *peerIDCache) get(k [64]byte) (peer.ID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids.Get(k)
}

func (c *peerIDCache) put(k [64]byte, id peer.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids.Put(k, id)
}

// PublicKeyFromPeerID extracts the secp256k1 public key embedded in a peer id.
func PublicKeyFromPeerID(id peer.ID) (*ecdsa.PublicKey, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer id %s: %w: %w", id, ErrPeerIDType, err)
	}
	if _, ok := pk.(*crypto.Secp256k1PublicKey); !ok {
		return nil, fmt.Errorf("peer id %s: %w: key type %s", id, ErrPeerIDType, pk.Type())
	}
	raw, err := pk.Raw()
	if err != nil {
		return nil, fmt.Errorf("peer id %s: %w: %w", id, ErrPeerIDType, err)
	}
	pub, err := ethcrypto.DecompressPubkey(raw)
	if err != nil {
		return nil, fmt.Errorf("peer id %s: %w: %w", id, ErrPeerIDType, err)
	}
	return pub, nil
}

// AddressFromPeerID returns the Ethereum-style address of the secp256k1 key
// embedded in a peer id: the validator address of the node with that id.
func AddressFromPeerID(id peer.ID) (common.Address, error) {
	pub, err := PublicKeyFromPeerID(id)
	if err != nil {
		return common.Address{}, err
	}
	return ethcrypto.PubkeyToAddress(*pub), nil
}

// identity is the network's libp2p key: Identity, which must be a
// secp256k1 key (peer ids name validator addresses), or Key's.
func (c *Config) identity() (crypto.PrivKey, error) {
	if c.Identity == nil {
		return libp2pPrivateKey(c.Key)
	}
	if _, ok := c.Identity.(*crypto.Secp256k1PrivateKey); !ok {
		return nil, fmt.Errorf("%w: identity of type %s", ErrKeyCurve, c.Identity.Type())
	}
	return c.Identity, nil
}
