import { APIResource } from "../../core/resource.js";
import * as Shared from "../shared.js";
import { EnvironmentClassesEnvironmentClassesPage } from "../shared.js";
import * as RunnersAPI from "../runners/runners.js";
import { type EnvironmentClassesPageParams, PagePromise } from "../../core/pagination.js";
import { RequestOptions } from "../../internal/request-options.js";
export declare class Classes extends APIResource {
    /**
     * Lists available environment classes with their specifications and resource
     * limits.
     *
     * Use this method to understand what types of environments you can create and
     * their capabilities. Environment classes define the compute resources and
     * features available to your environments.
     *
     * ### Examples
     *
     * - List all available classes:
     *
     *   Retrieves a list of all environment classes with their specifications.
     *
     *   ```yaml
     *   {}
     *   ```
     *
     *   buf:lint:ignore RPC_REQUEST_RESPONSE_UNIQUE
     *
     * @example
     * ```ts
     * // Automatically fetches more pages as needed.
     * for await (const environmentClass of client.environments.classes.list()) {
     *   // ...
     * }
     * ```
     */
    list(params: ClassListParams, options?: RequestOptions): PagePromise<EnvironmentClassesEnvironmentClassesPage, Shared.EnvironmentClass>;
}
export interface ClassListParams extends EnvironmentClassesPageParams {
    /**
     * Body param:
     */
    filter?: ClassListParams.Filter;
    /**
     * Body param: pagination contains the pagination options for listing environment
     * classes
     */
    pagination?: ClassListParams.Pagination;
}
export declare namespace ClassListParams {
    interface Filter {
        /**
         * can_create_environments filters the response to only environment classes that
         * can be used to create new environments by the caller. Unlike enabled, which
         * indicates general availability, this ensures the caller only sees environment
         * classes they are allowed to use.
         */
        canCreateEnvironments?: boolean | null;
        /**
         * enabled filters the response to only enabled or disabled environment classes. If
         * not set, all environment classes are returned.
         */
        enabled?: boolean | null;
        /**
         * runner_ids filters the response to only EnvironmentClasses of these Runner IDs
         */
        runnerIds?: Array<string>;
        /**
         * runner_kind filters the response to only environment classes from runners of
         * these kinds.
         */
        runnerKinds?: Array<RunnersAPI.RunnerKind>;
        /**
         * runner_providers filters the response to only environment classes from runners
         * of these providers.
         */
        runnerProviders?: Array<RunnersAPI.RunnerProvider>;
    }
    /**
     * pagination contains the pagination options for listing environment classes
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
export declare namespace Classes {
    export { type ClassListParams as ClassListParams };
}
export { type EnvironmentClassesEnvironmentClassesPage };
//# sourceMappingURL=classes.d.ts.map