"""HL7 v2 orders from a RIS into the Modality Worklist: MLLP transport (:mod:`.mllp`),
message parsing (:mod:`.messages`), acknowledgements (:mod:`.ack`), the order → worklist
mapping (:mod:`.orders`) and the receiver tying them together (:mod:`.receiver`)."""
