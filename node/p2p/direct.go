package p2p

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// directTimeout bounds one direct exchange, either side.
const directTimeout = 5 * time.Second

// DirectProtocol is the stream protocol of messages of kind sent straight
// to one peer: /verity/<network>/direct/<kind>/1.
func DirectProtocol(networkID uint64, kind string) protocol.ID {
	return protocol.ID("/verity/" + strconv.FormatUint(networkID, 10) + "/direct/" + kind + "/" + topicVersion)
}

// DirectHandler judges and takes a message sent straight to this node; its
// verdict goes back to the sender.
type DirectHandler func(ctx context.Context, from peer.ID, data []byte) Verdict

// HandleDirect serves messages of kind sent with SendDirect, at most
// maxSize bytes each (a longer one resets the stream). One message per
// stream: the sender writes it and closes its side, the handler answers
// with its verdict in one byte. A message the handler rejects, or one over
// maxSize, costs its sender a penalty (Penalise), as a rejected gossip
// message does.
func (n *Network) HandleDirect(kind string, maxSize int, h DirectHandler) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	n.host.SetStreamHandler(DirectProtocol(n.cfg.NetworkID, kind), func(s network.Stream) {
		defer s.Close()
		from := s.Conn().RemotePeer()
		_ = s.SetDeadline(time.Now().Add(directTimeout))
		data, err := io.ReadAll(io.LimitReader(s, int64(maxSize)+1))
		if err != nil || len(data) > maxSize {
			_ = s.Reset()
			if len(data) > maxSize {
				n.Penalise(from, "direct "+kind+" too large")
			}
			return
		}
		v := h(n.ctx, from, data)
		if v == Reject {
			n.Penalise(from, "direct "+kind+" rejected")
		}
		_, _ = s.Write([]byte{byte(v)})
	})
	return nil
}

// SendDirect sends data of kind straight to peer p, dialling it if needed
// (from the addresses this node has learnt), and returns nil once p has
// accepted it, ErrRejected or ErrIgnored with p's verdict, or the error
// that kept it from arriving.
func (n *Network) SendDirect(ctx context.Context, p peer.ID, kind string, data []byte) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if n.isClosed() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, directTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, DirectProtocol(n.cfg.NetworkID, kind))
	if err != nil {
		return fmt.Errorf("direct %s to %s: %w", kind, p, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if _, err := s.Write(data); err != nil {
		_ = s.Reset()
		return fmt.Errorf("direct %s to %s: %w", kind, p, err)
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return fmt.Errorf("direct %s to %s: %w", kind, p, err)
	}
	var verdict [1]byte
	if _, err := io.ReadFull(s, verdict[:]); err != nil {
		return fmt.Errorf("direct %s to %s: no verdict: %w", kind, p, err)
	}
	switch Verdict(verdict[0]) {
	case Accept:
		return nil
	case Reject:
		return fmt.Errorf("direct %s to %s: %w", kind, p, ErrRejected)
	default:
		return fmt.Errorf("direct %s to %s: %w", kind, p, ErrIgnored)
	}
}
