// Package volume is glusterkube's heketi volume service: the one place
// that creates, finds, grows, clones, lists and deletes heketi volumes,
// shared by the built-in provisioner (package provisioner) and the CSI
// controller (package csi). It takes plain values — StorageClass
// parameters, a size, a name, credentials — and knows nothing of claims,
// the provision library or gRPC; its error classes (IsInvalid, IsNoSpace,
// IsInFlight, IsOutcomeUnknown, IsNotFound, IsGIDExhausted,
// IsCredentialsRefused) are what the adapters map to provisioning states,
// Events and gRPC codes.
//
// It owns:
//   - StorageClass parameter parsing (ParseClass) with the in-tree
//     kubernetes.io/glusterfs names and errors (*ParamError) that name the
//     class, the parameter and its valid form — the same message whichever
//     front door reports it;
//   - credential resolution (ClassCredentials, DefaultCredentials);
//   - deterministic volume names (Name, CSIName) and the CSI volume id
//     (ID, ParseID; format in id.go);
//   - a supplemental GID table shared by all classes, filled from heketi's
//     volumes (and, by the provisioner, from PV annotations), and caught
//     up with the volumes heketi lists before each GID is handed out, so
//     a GID is not handed out twice, even by two processes on one heketi;
//   - a per-server index of volumes by name and of node storage hosts.
//
// Crash safety rests on three rules. A volume's name is derived from what
// the caller will ask for again (the claim, the CSI name), and Create looks
// the name up before it creates, so a retry after a crash at any point
// finds and reuses the volume an earlier attempt made. With several
// candidate clusters, Create asks one cluster at a time, in heketi's order,
// because heketi's names are unique per cluster only (createInOrder). And
// an outcome that is not known (a timed-out create, expand or clone) is
// reported as such (IsOutcomeUnknown): the caller keeps retrying instead of
// forgetting a volume heketi may still make. Operations heketi runs
// asynchronously and hides while they run (create, clone, delete) or whose
// effect does not show until they end (expand) are checked against
// heketi's pending operations before anything is done twice (IsInFlight).
package volume
