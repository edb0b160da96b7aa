import { APIResource } from "../../../../core/resource.js";
import * as Shared from "../../../shared.js";
import { TaskExecutionsTaskExecutionsPage } from "../../../shared.js";
import { APIPromise } from "../../../../core/api-promise.js";
import { PagePromise, type TaskExecutionsPageParams } from "../../../../core/pagination.js";
import { RequestOptions } from "../../../../internal/request-options.js";
export declare class Executions extends APIResource {
    /**
     * Gets details about a specific task execution.
     *
     * Use this method to:
     *
     * - Monitor execution progress
     * - View execution logs
     * - Check execution status
     * - Debug failed executions
     *
     * ### Examples
     *
     * - Get execution details:
     *
     *   Retrieves information about a specific task execution.
     *
     *   ```yaml
     *   id: "d2c94c27-3b76-4a42-b88c-95a85e392c68"
     *   ```
     *
     * @example
     * ```ts
     * const execution =
     *   await client.environments.automations.tasks.executions.retrieve(
     *     { id: 'd2c94c27-3b76-4a42-b88c-95a85e392c68' },
     *   );
     * ```
     */
    retrieve(body: ExecutionRetrieveParams, options?: RequestOptions): APIPromise<ExecutionRetrieveResponse>;
    /**
     * Lists executions of automation tasks.
     *
     * Use this method to:
     *
     * - View task execution history
     * - Monitor running tasks
     * - Track task completion status
     *
     * ### Examples
     *
     * - List all executions:
     *
     *   Shows execution history for all tasks.
     *
     *   ```yaml
     *   filter:
     *     environmentIds: ["07e03a28-65a5-4d98-b532-8ea67b188048"]
     *   pagination:
     *     pageSize: 20
     *   ```
     *
     * - Filter by phase:
     *
     *   Lists executions in specific phases.
     *
     *   ```yaml
     *   filter:
     *     phases: ["TASK_EXECUTION_PHASE_RUNNING", "TASK_EXECUTION_PHASE_FAILED"]
     *   pagination:
     *     pageSize: 20
     *   ```
     *
     * @example
     * ```ts
     * // Automatically fetches more pages as needed.
     * for await (const taskExecution of client.environments.automations.tasks.executions.list(
     *   {
     *     filter: {
     *       phases: [
     *         'TASK_EXECUTION_PHASE_RUNNING',
     *         'TASK_EXECUTION_PHASE_FAILED',
     *       ],
     *     },
     *     pagination: { pageSize: 20 },
     *   },
     * )) {
     *   // ...
     * }
     * ```
     */
    list(params: ExecutionListParams, options?: RequestOptions): PagePromise<TaskExecutionsTaskExecutionsPage, Shared.TaskExecution>;
    /**
     * Stops a running task execution.
     *
     * Use this method to:
     *
     * - Cancel long-running tasks
     * - Stop failed executions
     * - Interrupt task processing
     *
     * ### Examples
     *
     * - Stop execution:
     *
     *   Stops a running task execution.
     *
     *   ```yaml
     *   id: "d2c94c27-3b76-4a42-b88c-95a85e392c68"
     *   ```
     *
     * @example
     * ```ts
     * const response =
     *   await client.environments.automations.tasks.executions.stop(
     *     { id: 'd2c94c27-3b76-4a42-b88c-95a85e392c68' },
     *   );
     * ```
     */
    stop(body: ExecutionStopParams, options?: RequestOptions): APIPromise<unknown>;
}
export interface ExecutionRetrieveResponse {
    taskExecution: Shared.TaskExecution;
}
export type ExecutionStopResponse = unknown;
export interface ExecutionRetrieveParams {
    id?: string;
}
export interface ExecutionListParams extends TaskExecutionsPageParams {
    /**
     * Body param: filter contains the filter options for listing task runs
     */
    filter?: ExecutionListParams.Filter;
    /**
     * Body param: pagination contains the pagination options for listing task runs
     */
    pagination?: ExecutionListParams.Pagination;
}
export declare namespace ExecutionListParams {
    /**
     * filter contains the filter options for listing task runs
     */
    interface Filter {
        /**
         * environment_ids filters the response to only task runs of these environments
         */
        environmentIds?: Array<string>;
        /**
         * phases filters the response to only task runs in these phases
         */
        phases?: Array<Shared.TaskExecutionPhase>;
        /**
         * task_ids filters the response to only task runs of these tasks
         */
        taskIds?: Array<string>;
        /**
         * task_references filters the response to only task runs with this reference
         */
        taskReferences?: Array<string>;
    }
    /**
     * pagination contains the pagination options for listing task runs
     */
    interface Pagination {
        /**
         * Token for the next set of results that was returned as next_token of a
         * PaginationResponse
         */
        token?: string;
        /**
         * Page size is the maximum number of results to retrieve per page. Defaults to 25.
         * Maximum 100.
         */
        pageSize?: number;
    }
}
export interface ExecutionStopParams {
    id?: string;
}
export declare namespace Executions {
    export { type ExecutionRetrieveResponse as ExecutionRetrieveResponse, type ExecutionStopResponse as ExecutionStopResponse, type ExecutionRetrieveParams as ExecutionRetrieveParams, type ExecutionListParams as ExecutionListParams, type ExecutionStopParams as ExecutionStopParams, };
}
export { type TaskExecutionsTaskExecutionsPage };
//# sourceMappingURL=executions.d.ts.map