/**
 * The request and response types of every Kafka API, by API key, so that
 * `client.request(ApiKey.Produce, body)` is typed end to end. One line per entry of API_SPECS
 * (src/protocol/messages/index.ts); test/unit/network/api-message-types.test.ts fails when an
 * API is added there and not here.
 */
import type { ProduceRequestInput, ProduceResponse } from '../protocol/messages/000-produce.ts';
import type { FetchRequestInput, FetchResponse } from '../protocol/messages/001-fetch.ts';
import type { ListOffsetsRequestInput, ListOffsetsResponse } from '../protocol/messages/002-list-offsets.ts';
import type { MetadataRequestInput, MetadataResponse } from '../protocol/messages/003-metadata.ts';
import type { LeaderAndIsrRequestInput, LeaderAndIsrResponse } from '../protocol/messages/004-leader-and-isr.ts';
import type { StopReplicaRequestInput, StopReplicaResponse } from '../protocol/messages/005-stop-replica.ts';
import type { UpdateMetadataRequestInput, UpdateMetadataResponse } from '../protocol/messages/006-update-metadata.ts';
import type {
  ControlledShutdownRequestInput,
  ControlledShutdownResponse,
} from '../protocol/messages/007-controlled-shutdown.ts';
import type { OffsetCommitRequestInput, OffsetCommitResponse } from '../protocol/messages/008-offset-commit.ts';
import type { OffsetFetchRequestInput, OffsetFetchResponse } from '../protocol/messages/009-offset-fetch.ts';
import type {
  FindCoordinatorRequestInput,
  FindCoordinatorResponse,
} from '../protocol/messages/010-find-coordinator.ts';
import type { JoinGroupRequestInput, JoinGroupResponse } from '../protocol/messages/011-join-group.ts';
import type { HeartbeatRequestInput, HeartbeatResponse } from '../protocol/messages/012-heartbeat.ts';
import type { LeaveGroupRequestInput, LeaveGroupResponse } from '../protocol/messages/013-leave-group.ts';
import type { SyncGroupRequestInput, SyncGroupResponse } from '../protocol/messages/014-sync-group.ts';
import type { DescribeGroupsRequestInput, DescribeGroupsResponse } from '../protocol/messages/015-describe-groups.ts';
import type { ListGroupsRequestInput, ListGroupsResponse } from '../protocol/messages/016-list-groups.ts';
import type { SaslHandshakeRequestInput, SaslHandshakeResponse } from '../protocol/messages/017-sasl-handshake.ts';
import type { ApiVersionsRequestInput, ApiVersionsResponse } from '../protocol/messages/018-api-versions.ts';
import type { CreateTopicsRequestInput, CreateTopicsResponse } from '../protocol/messages/019-create-topics.ts';
import type { DeleteTopicsRequestInput, DeleteTopicsResponse } from '../protocol/messages/020-delete-topics.ts';
import type { DeleteRecordsRequestInput, DeleteRecordsResponse } from '../protocol/messages/021-delete-records.ts';
import type { InitProducerIdRequestInput, InitProducerIdResponse } from '../protocol/messages/022-init-producer-id.ts';
import type {
  OffsetForLeaderEpochRequestInput,
  OffsetForLeaderEpochResponse,
} from '../protocol/messages/023-offset-for-leader-epoch.ts';
import type {
  AddPartitionsToTxnRequestInput,
  AddPartitionsToTxnResponse,
} from '../protocol/messages/024-add-partitions-to-txn.ts';
import type {
  AddOffsetsToTxnRequestInput,
  AddOffsetsToTxnResponse,
} from '../protocol/messages/025-add-offsets-to-txn.ts';
import type { EndTxnRequestInput, EndTxnResponse } from '../protocol/messages/026-end-txn.ts';
import type {
  WriteTxnMarkersRequestInput,
  WriteTxnMarkersResponse,
} from '../protocol/messages/027-write-txn-markers.ts';
import type {
  TxnOffsetCommitRequestInput,
  TxnOffsetCommitResponse,
} from '../protocol/messages/028-txn-offset-commit.ts';
import type { DescribeAclsRequestInput, DescribeAclsResponse } from '../protocol/messages/029-describe-acls.ts';
import type { CreateAclsRequestInput, CreateAclsResponse } from '../protocol/messages/030-create-acls.ts';
import type { DeleteAclsRequestInput, DeleteAclsResponse } from '../protocol/messages/031-delete-acls.ts';
import type {
  DescribeConfigsRequestInput,
  DescribeConfigsResponse,
} from '../protocol/messages/032-describe-configs.ts';
import type { AlterConfigsRequestInput, AlterConfigsResponse } from '../protocol/messages/033-alter-configs.ts';
import type {
  AlterReplicaLogDirsRequestInput,
  AlterReplicaLogDirsResponse,
} from '../protocol/messages/034-alter-replica-log-dirs.ts';
import type {
  DescribeLogDirsRequestInput,
  DescribeLogDirsResponse,
} from '../protocol/messages/035-describe-log-dirs.ts';
import type {
  SaslAuthenticateRequestInput,
  SaslAuthenticateResponse,
} from '../protocol/messages/036-sasl-authenticate.ts';
import type {
  CreatePartitionsRequestInput,
  CreatePartitionsResponse,
} from '../protocol/messages/037-create-partitions.ts';
import type {
  CreateDelegationTokenRequestInput,
  CreateDelegationTokenResponse,
} from '../protocol/messages/038-create-delegation-token.ts';
import type {
  RenewDelegationTokenRequestInput,
  RenewDelegationTokenResponse,
} from '../protocol/messages/039-renew-delegation-token.ts';
import type {
  ExpireDelegationTokenRequestInput,
  ExpireDelegationTokenResponse,
} from '../protocol/messages/040-expire-delegation-token.ts';
import type {
  DescribeDelegationTokenRequestInput,
  DescribeDelegationTokenResponse,
} from '../protocol/messages/041-describe-delegation-token.ts';
import type { DeleteGroupsRequestInput, DeleteGroupsResponse } from '../protocol/messages/042-delete-groups.ts';
import type { ElectLeadersRequestInput, ElectLeadersResponse } from '../protocol/messages/043-elect-leaders.ts';
import type {
  IncrementalAlterConfigsRequestInput,
  IncrementalAlterConfigsResponse,
} from '../protocol/messages/044-incremental-alter-configs.ts';
import type {
  AlterPartitionReassignmentsRequestInput,
  AlterPartitionReassignmentsResponse,
} from '../protocol/messages/045-alter-partition-reassignments.ts';
import type {
  ListPartitionReassignmentsRequestInput,
  ListPartitionReassignmentsResponse,
} from '../protocol/messages/046-list-partition-reassignments.ts';
import type { OffsetDeleteRequestInput, OffsetDeleteResponse } from '../protocol/messages/047-offset-delete.ts';
import type {
  DescribeClientQuotasRequestInput,
  DescribeClientQuotasResponse,
} from '../protocol/messages/048-describe-client-quotas.ts';
import type {
  AlterClientQuotasRequestInput,
  AlterClientQuotasResponse,
} from '../protocol/messages/049-alter-client-quotas.ts';
import type {
  DescribeUserScramCredentialsRequestInput,
  DescribeUserScramCredentialsResponse,
} from '../protocol/messages/050-describe-user-scram-credentials.ts';
import type {
  AlterUserScramCredentialsRequestInput,
  AlterUserScramCredentialsResponse,
} from '../protocol/messages/051-alter-user-scram-credentials.ts';
import type { VoteRequestInput, VoteResponse } from '../protocol/messages/052-vote.ts';
import type {
  BeginQuorumEpochRequestInput,
  BeginQuorumEpochResponse,
} from '../protocol/messages/053-begin-quorum-epoch.ts';
import type { EndQuorumEpochRequestInput, EndQuorumEpochResponse } from '../protocol/messages/054-end-quorum-epoch.ts';
import type { DescribeQuorumRequestInput, DescribeQuorumResponse } from '../protocol/messages/055-describe-quorum.ts';
import type { AlterPartitionRequestInput, AlterPartitionResponse } from '../protocol/messages/056-alter-partition.ts';
import type { UpdateFeaturesRequestInput, UpdateFeaturesResponse } from '../protocol/messages/057-update-features.ts';
import type { EnvelopeRequestInput, EnvelopeResponse } from '../protocol/messages/058-envelope.ts';
import type { FetchSnapshotRequestInput, FetchSnapshotResponse } from '../protocol/messages/059-fetch-snapshot.ts';
import type {
  DescribeClusterRequestInput,
  DescribeClusterResponse,
} from '../protocol/messages/060-describe-cluster.ts';
import type {
  DescribeProducersRequestInput,
  DescribeProducersResponse,
} from '../protocol/messages/061-describe-producers.ts';
import type {
  BrokerRegistrationRequestInput,
  BrokerRegistrationResponse,
} from '../protocol/messages/062-broker-registration.ts';
import type {
  BrokerHeartbeatRequestInput,
  BrokerHeartbeatResponse,
} from '../protocol/messages/063-broker-heartbeat.ts';
import type {
  UnregisterBrokerRequestInput,
  UnregisterBrokerResponse,
} from '../protocol/messages/064-unregister-broker.ts';
import type {
  DescribeTransactionsRequestInput,
  DescribeTransactionsResponse,
} from '../protocol/messages/065-describe-transactions.ts';
import type {
  ListTransactionsRequestInput,
  ListTransactionsResponse,
} from '../protocol/messages/066-list-transactions.ts';
import type {
  AllocateProducerIdsRequestInput,
  AllocateProducerIdsResponse,
} from '../protocol/messages/067-allocate-producer-ids.ts';
import type {
  ConsumerGroupHeartbeatRequestInput,
  ConsumerGroupHeartbeatResponse,
} from '../protocol/messages/068-consumer-group-heartbeat.ts';
import type {
  ConsumerGroupDescribeRequestInput,
  ConsumerGroupDescribeResponse,
} from '../protocol/messages/069-consumer-group-describe.ts';
import type {
  ControllerRegistrationRequestInput,
  ControllerRegistrationResponse,
} from '../protocol/messages/070-controller-registration.ts';
import type {
  GetTelemetrySubscriptionsRequestInput,
  GetTelemetrySubscriptionsResponse,
} from '../protocol/messages/071-get-telemetry-subscriptions.ts';
import type { PushTelemetryRequestInput, PushTelemetryResponse } from '../protocol/messages/072-push-telemetry.ts';
import type {
  AssignReplicasToDirsRequestInput,
  AssignReplicasToDirsResponse,
} from '../protocol/messages/073-assign-replicas-to-dirs.ts';
import type {
  ListClientMetricsResourcesRequestInput,
  ListClientMetricsResourcesResponse,
} from '../protocol/messages/074-list-client-metrics-resources.ts';
import type {
  DescribeTopicPartitionsRequestInput,
  DescribeTopicPartitionsResponse,
} from '../protocol/messages/075-describe-topic-partitions.ts';
import type {
  ShareGroupHeartbeatRequestInput,
  ShareGroupHeartbeatResponse,
} from '../protocol/messages/076-share-group-heartbeat.ts';
import type {
  ShareGroupDescribeRequestInput,
  ShareGroupDescribeResponse,
} from '../protocol/messages/077-share-group-describe.ts';
import type { ShareFetchRequestInput, ShareFetchResponse } from '../protocol/messages/078-share-fetch.ts';
import type {
  ShareAcknowledgeRequestInput,
  ShareAcknowledgeResponse,
} from '../protocol/messages/079-share-acknowledge.ts';
import type { AddRaftVoterRequestInput, AddRaftVoterResponse } from '../protocol/messages/080-add-raft-voter.ts';
import type {
  RemoveRaftVoterRequestInput,
  RemoveRaftVoterResponse,
} from '../protocol/messages/081-remove-raft-voter.ts';
import type {
  UpdateRaftVoterRequestInput,
  UpdateRaftVoterResponse,
} from '../protocol/messages/082-update-raft-voter.ts';
import type {
  InitializeShareGroupStateRequestInput,
  InitializeShareGroupStateResponse,
} from '../protocol/messages/083-initialize-share-group-state.ts';
import type {
  ReadShareGroupStateRequestInput,
  ReadShareGroupStateResponse,
} from '../protocol/messages/084-read-share-group-state.ts';
import type {
  WriteShareGroupStateRequestInput,
  WriteShareGroupStateResponse,
} from '../protocol/messages/085-write-share-group-state.ts';
import type {
  DeleteShareGroupStateRequestInput,
  DeleteShareGroupStateResponse,
} from '../protocol/messages/086-delete-share-group-state.ts';
import type {
  ReadShareGroupStateSummaryRequestInput,
  ReadShareGroupStateSummaryResponse,
} from '../protocol/messages/087-read-share-group-state-summary.ts';

export interface ApiMessageTypes {
  0: { request: ProduceRequestInput; response: ProduceResponse };
  1: { request: FetchRequestInput; response: FetchResponse };
  2: { request: ListOffsetsRequestInput; response: ListOffsetsResponse };
  3: { request: MetadataRequestInput; response: MetadataResponse };
  4: { request: LeaderAndIsrRequestInput; response: LeaderAndIsrResponse };
  5: { request: StopReplicaRequestInput; response: StopReplicaResponse };
  6: { request: UpdateMetadataRequestInput; response: UpdateMetadataResponse };
  7: { request: ControlledShutdownRequestInput; response: ControlledShutdownResponse };
  8: { request: OffsetCommitRequestInput; response: OffsetCommitResponse };
  9: { request: OffsetFetchRequestInput; response: OffsetFetchResponse };
  10: { request: FindCoordinatorRequestInput; response: FindCoordinatorResponse };
  11: { request: JoinGroupRequestInput; response: JoinGroupResponse };
  12: { request: HeartbeatRequestInput; response: HeartbeatResponse };
  13: { request: LeaveGroupRequestInput; response: LeaveGroupResponse };
  14: { request: SyncGroupRequestInput; response: SyncGroupResponse };
  15: { request: DescribeGroupsRequestInput; response: DescribeGroupsResponse };
  16: { request: ListGroupsRequestInput; response: ListGroupsResponse };
  17: { request: SaslHandshakeRequestInput; response: SaslHandshakeResponse };
  18: { request: ApiVersionsRequestInput; response: ApiVersionsResponse };
  19: { request: CreateTopicsRequestInput; response: CreateTopicsResponse };
  20: { request: DeleteTopicsRequestInput; response: DeleteTopicsResponse };
  21: { request: DeleteRecordsRequestInput; response: DeleteRecordsResponse };
  22: { request: InitProducerIdRequestInput; response: InitProducerIdResponse };
  23: { request: OffsetForLeaderEpochRequestInput; response: OffsetForLeaderEpochResponse };
  24: { request: AddPartitionsToTxnRequestInput; response: AddPartitionsToTxnResponse };
  25: { request: AddOffsetsToTxnRequestInput; response: AddOffsetsToTxnResponse };
  26: { request: EndTxnRequestInput; response: EndTxnResponse };
  27: { request: WriteTxnMarkersRequestInput; response: WriteTxnMarkersResponse };
  28: { request: TxnOffsetCommitRequestInput; response: TxnOffsetCommitResponse };
  29: { request: DescribeAclsRequestInput; response: DescribeAclsResponse };
  30: { request: CreateAclsRequestInput; response: CreateAclsResponse };
  31: { request: DeleteAclsRequestInput; response: DeleteAclsResponse };
  32: { request: DescribeConfigsRequestInput; response: DescribeConfigsResponse };
  33: { request: AlterConfigsRequestInput; response: AlterConfigsResponse };
  34: { request: AlterReplicaLogDirsRequestInput; response: AlterReplicaLogDirsResponse };
  35: { request: DescribeLogDirsRequestInput; response: DescribeLogDirsResponse };
  36: { request: SaslAuthenticateRequestInput; response: SaslAuthenticateResponse };
  37: { request: CreatePartitionsRequestInput; response: CreatePartitionsResponse };
  38: { request: CreateDelegationTokenRequestInput; response: CreateDelegationTokenResponse };
  39: { request: RenewDelegationTokenRequestInput; response: RenewDelegationTokenResponse };
  40: { request: ExpireDelegationTokenRequestInput; response: ExpireDelegationTokenResponse };
  41: { request: DescribeDelegationTokenRequestInput; response: DescribeDelegationTokenResponse };
  42: { request: DeleteGroupsRequestInput; response: DeleteGroupsResponse };
  43: { request: ElectLeadersRequestInput; response: ElectLeadersResponse };
  44: { request: IncrementalAlterConfigsRequestInput; response: IncrementalAlterConfigsResponse };
  45: { request: AlterPartitionReassignmentsRequestInput; response: AlterPartitionReassignmentsResponse };
  46: { request: ListPartitionReassignmentsRequestInput; response: ListPartitionReassignmentsResponse };
  47: { request: OffsetDeleteRequestInput; response: OffsetDeleteResponse };
  48: { request: DescribeClientQuotasRequestInput; response: DescribeClientQuotasResponse };
  49: { request: AlterClientQuotasRequestInput; response: AlterClientQuotasResponse };
  50: { request: DescribeUserScramCredentialsRequestInput; response: DescribeUserScramCredentialsResponse };
  51: { request: AlterUserScramCredentialsRequestInput; response: AlterUserScramCredentialsResponse };
  52: { request: VoteRequestInput; response: VoteResponse };
  53: { request: BeginQuorumEpochRequestInput; response: BeginQuorumEpochResponse };
  54: { request: EndQuorumEpochRequestInput; response: EndQuorumEpochResponse };
  55: { request: DescribeQuorumRequestInput; response: DescribeQuorumResponse };
  56: { request: AlterPartitionRequestInput; response: AlterPartitionResponse };
  57: { request: UpdateFeaturesRequestInput; response: UpdateFeaturesResponse };
  58: { request: EnvelopeRequestInput; response: EnvelopeResponse };
  59: { request: FetchSnapshotRequestInput; response: FetchSnapshotResponse };
  60: { request: DescribeClusterRequestInput; response: DescribeClusterResponse };
  61: { request: DescribeProducersRequestInput; response: DescribeProducersResponse };
  62: { request: BrokerRegistrationRequestInput; response: BrokerRegistrationResponse };
  63: { request: BrokerHeartbeatRequestInput; response: BrokerHeartbeatResponse };
  64: { request: UnregisterBrokerRequestInput; response: UnregisterBrokerResponse };
  65: { request: DescribeTransactionsRequestInput; response: DescribeTransactionsResponse };
  66: { request: ListTransactionsRequestInput; response: ListTransactionsResponse };
  67: { request: AllocateProducerIdsRequestInput; response: AllocateProducerIdsResponse };
  68: { request: ConsumerGroupHeartbeatRequestInput; response: ConsumerGroupHeartbeatResponse };
  69: { request: ConsumerGroupDescribeRequestInput; response: ConsumerGroupDescribeResponse };
  70: { request: ControllerRegistrationRequestInput; response: ControllerRegistrationResponse };
  71: { request: GetTelemetrySubscriptionsRequestInput; response: GetTelemetrySubscriptionsResponse };
  72: { request: PushTelemetryRequestInput; response: PushTelemetryResponse };
  73: { request: AssignReplicasToDirsRequestInput; response: AssignReplicasToDirsResponse };
  74: { request: ListClientMetricsResourcesRequestInput; response: ListClientMetricsResourcesResponse };
  75: { request: DescribeTopicPartitionsRequestInput; response: DescribeTopicPartitionsResponse };
  76: { request: ShareGroupHeartbeatRequestInput; response: ShareGroupHeartbeatResponse };
  77: { request: ShareGroupDescribeRequestInput; response: ShareGroupDescribeResponse };
  78: { request: ShareFetchRequestInput; response: ShareFetchResponse };
  79: { request: ShareAcknowledgeRequestInput; response: ShareAcknowledgeResponse };
  80: { request: AddRaftVoterRequestInput; response: AddRaftVoterResponse };
  81: { request: RemoveRaftVoterRequestInput; response: RemoveRaftVoterResponse };
  82: { request: UpdateRaftVoterRequestInput; response: UpdateRaftVoterResponse };
  83: { request: InitializeShareGroupStateRequestInput; response: InitializeShareGroupStateResponse };
  84: { request: ReadShareGroupStateRequestInput; response: ReadShareGroupStateResponse };
  85: { request: WriteShareGroupStateRequestInput; response: WriteShareGroupStateResponse };
  86: { request: DeleteShareGroupStateRequestInput; response: DeleteShareGroupStateResponse };
  87: { request: ReadShareGroupStateSummaryRequestInput; response: ReadShareGroupStateSummaryResponse };
}

export type ApiKeyNumber = keyof ApiMessageTypes;
export type RequestOf<K extends ApiKeyNumber> = ApiMessageTypes[K]['request'];
export type ResponseOf<K extends ApiKeyNumber> = ApiMessageTypes[K]['response'];

/** Named API keys for readable call sites: `client.request(ApiKey.Metadata, {...})`. */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  LeaderAndIsr: 4,
  StopReplica: 5,
  UpdateMetadata: 6,
  ControlledShutdown: 7,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  SaslHandshake: 17,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  DeleteRecords: 21,
  InitProducerId: 22,
  OffsetForLeaderEpoch: 23,
  AddPartitionsToTxn: 24,
  AddOffsetsToTxn: 25,
  EndTxn: 26,
  WriteTxnMarkers: 27,
  TxnOffsetCommit: 28,
  DescribeAcls: 29,
  CreateAcls: 30,
  DeleteAcls: 31,
  DescribeConfigs: 32,
  AlterConfigs: 33,
  AlterReplicaLogDirs: 34,
  DescribeLogDirs: 35,
  SaslAuthenticate: 36,
  CreatePartitions: 37,
  CreateDelegationToken: 38,
  RenewDelegationToken: 39,
  ExpireDelegationToken: 40,
  DescribeDelegationToken: 41,
  DeleteGroups: 42,
  ElectLeaders: 43,
  IncrementalAlterConfigs: 44,
  AlterPartitionReassignments: 45,
  ListPartitionReassignments: 46,
  OffsetDelete: 47,
  DescribeClientQuotas: 48,
  AlterClientQuotas: 49,
  DescribeUserScramCredentials: 50,
  AlterUserScramCredentials: 51,
  Vote: 52,
  BeginQuorumEpoch: 53,
  EndQuorumEpoch: 54,
  DescribeQuorum: 55,
  AlterPartition: 56,
  UpdateFeatures: 57,
  Envelope: 58,
  FetchSnapshot: 59,
  DescribeCluster: 60,
  DescribeProducers: 61,
  BrokerRegistration: 62,
  BrokerHeartbeat: 63,
  UnregisterBroker: 64,
  DescribeTransactions: 65,
  ListTransactions: 66,
  AllocateProducerIds: 67,
  ConsumerGroupHeartbeat: 68,
  ConsumerGroupDescribe: 69,
  ControllerRegistration: 70,
  GetTelemetrySubscriptions: 71,
  PushTelemetry: 72,
  AssignReplicasToDirs: 73,
  ListClientMetricsResources: 74,
  DescribeTopicPartitions: 75,
  ShareGroupHeartbeat: 76,
  ShareGroupDescribe: 77,
  ShareFetch: 78,
  ShareAcknowledge: 79,
  AddRaftVoter: 80,
  RemoveRaftVoter: 81,
  UpdateRaftVoter: 82,
  InitializeShareGroupState: 83,
  ReadShareGroupState: 84,
  WriteShareGroupState: 85,
  DeleteShareGroupState: 86,
  ReadShareGroupStateSummary: 87,
} as const;
