package provisioner

import (
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/volume"
)

// storageDial is the provisioner's heketi Dialer on a storage node: the
// real client, wrapped so that heketi's volumes exist on the node's
// glusterd (testenv.GlusterdHeketi).
func storageDial(s *testenv.StorageNode) volume.Dialer {
	return func(cfg heketi.Config) (volume.Heketi, error) {
		h, err := s.Dial(cfg)
		if err != nil {
			return nil, err
		}
		return h, nil
	}
}
