// Package provisioner is glusterkube's dynamic provisioner: one heketi
// volume per PersistentVolumeClaim, exposed to pods through the in-tree
// glusterfs volume source with an Endpoints and Service per claim.
//
// It plugs into sigs.k8s.io/sig-storage-lib-external-provisioner/v13, which
// owns the informers, workqueues, retries and PV saving; this package owns
// the two answers the library asks for (Provision and Delete), StorageClass
// parameter parsing with the in-tree kubernetes.io/glusterfs names, GID
// allocation, volume expansion, and the leader-elected Run that wires them.
//
// Crash safety rests on one rule: a heketi volume's name derives from the
// claim (hence from the PV name the library will use), and Provision looks
// the name up before it creates. A retry after a crash at any point finds
// and reuses the volume an earlier attempt made. Uncertain outcomes (a
// timed-out create) are reported as ProvisioningInBackground so the library
// keeps retrying instead of forgetting a volume heketi may still make.
//
// Delete never depends on the StorageClass: everything it needs (heketi
// URL, user, Secret reference — never a key) is recorded in PV annotations.
package provisioner
