// Package provisioner is glusterkube's built-in dynamic provisioner: one
// heketi volume per PersistentVolumeClaim. By default its PVs carry a csi
// source for glusterkube's CSI driver (csi.DriverName) with the volume id
// as handle and the servers and volume name as attributes, and need no
// other API object; a class with volumesource: glusterfs gets the in-tree
// glusterfs source with a Service and Endpoints per claim instead (for
// clusters older than 1.26, whose kubelets still mount it).
//
// It plugs into sigs.k8s.io/sig-storage-lib-external-provisioner/v13, which
// owns the informers, workqueues, retries and PV saving; this package is a
// thin adapter from claims and PVs to the heketi volume service (package
// volume, which the CSI controller shares): the two answers the library
// asks for (Provision and Delete), the Events on claims, the Endpoints of
// in-tree PVs, GIDs collected from existing PVs, volume expansion (the
// Expander) and the leader-elected Run that wires them.
//
// Crash safety rests on one rule: a heketi volume's name derives from the
// claim (hence from the PV name the library will use), and the volume
// service looks the name up before it creates. A retry after a crash at
// any point finds and reuses the volume an earlier attempt made. Uncertain
// outcomes (a timed-out create) are reported as ProvisioningInBackground
// so the library keeps retrying instead of forgetting a volume heketi may
// still make.
//
// Delete never depends on the StorageClass: everything it needs (heketi
// URL, user, Secret reference — never a key) is recorded in PV annotations.
//
// On API servers from 1.26, which lost the in-tree kubernetes.io/glusterfs
// plugin, it also serves the StorageClasses that name that plugin
// (InTreeClasses, intree*.go): it hands their claims to the library (the
// PV controller no longer names a provisioner on them), makes CSI PVs for
// them with the in-tree parameters, and deletes the PVs the in-tree
// provisioner made — whose heketi server is the class's, recorded nowhere
// in the PV — with their Endpoints and Service, working around what the
// PV controller still does to PVs that name a kubernetes.io/ plugin (a
// deletion finalizer only that plugin would remove, Failed instead of
// Released).
package provisioner
